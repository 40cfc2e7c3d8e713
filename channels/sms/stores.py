"""State the SMS channel keeps between requests, behind small Protocols the hub backs with its DB.

Four kinds of state, all keyed so a table with a primary key and an ``expires_at`` column is
enough. The in-memory classes are for tests and single-process demos; they lose everything on
restart, which is exactly what a DB-backed implementation must not do.

- :class:`OptOutStore`: who texted STOP. Scope is the channel id, or ``"*"`` for STOPALL.
  Must be durable: sending to an opted-out number is a compliance breach.
- :class:`SentStore`: what we sent, by our message id (= ``SendResult.external_id``), so a DLR
  can be tied to its conversation and a retried ``send()`` with the same idempotency key is not
  sent twice. Keep rows for the DLR window (days).
- :class:`PartsStore`: parts of concatenated inbound messages until all arrived (or the
  timeout passes), plus tombstones of part ids already joined, so a gateway's late retry of one
  part does not start a phantom message. ``add`` must be atomic per group.
- :class:`NonceStore`: webhook signatures already accepted, for replay protection. ``claim``
  must be an atomic insert-if-absent (``INSERT ... ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

ALL_CHANNELS = "*"


@dataclass(frozen=True, slots=True)
class OptOutRecord:
    """Latest keyword state of one number in one scope."""

    scope: str
    phone: str
    opted_out: bool
    keyword: str
    at: datetime


class OptOutStore(Protocol):
    async def record(self, entry: OptOutRecord) -> None:
        """Upsert by (scope, phone) unless the stored record is newer (``at``): a late or
        replayed old START must never undo a later STOP."""
        ...

    async def is_opted_out(self, channel_id: str, phone: str) -> bool:
        """True when opted out in ``channel_id`` or in :data:`ALL_CHANNELS`."""
        ...


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One message handed to the gateway."""

    message_id: str  # our id (Kannel) or the provider's sid (Twilio)
    channel_id: str
    to: str
    conversation_id: str
    idempotency_key: str
    segments: int
    sent_at: datetime


class SentStore(Protocol):
    async def remember(self, record: SentRecord) -> None: ...

    async def by_message_id(self, message_id: str) -> SentRecord | None: ...

    async def by_idempotency_key(self, channel_id: str, key: str) -> SentRecord | None: ...


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One part of a concatenated inbound message (plain values, easy to serialize)."""

    group: str
    seq: int
    total: int
    part_id: str  # the part's own external_id (gateway retries repeat it)
    sender: str
    recipient: str | None
    text: str
    received_at: datetime
    first_seen: float  # wall-clock seconds when the group's first part arrived
    metadata: dict[str, Any] = field(default_factory=dict)


class PartsStore(Protocol):
    async def add(self, part: StoredPart) -> tuple[StoredPart, ...] | None:
        """Store ``part``; return every part held for its group (one per seq, first wins), or
        ``None`` when ``part.part_id`` was already joined into a delivered message."""
        ...

    async def get(self, group: str) -> tuple[StoredPart, ...]:
        """The parts held for ``group``, by seq."""
        ...

    async def pop(self, group: str, *, tombstone_until: float) -> tuple[StoredPart, ...]:
        """Remove and return a group's parts; remember their ids until ``tombstone_until``."""
        ...

    async def expired(self, first_seen_before: float) -> list[str]:
        """Groups whose first part arrived before the given time (and are still open)."""
        ...


class NonceStore(Protocol):
    async def claim(self, key: str, *, expires_at: float, now: float) -> bool:
        """Insert ``key`` if absent or expired; False when it is held (a replay)."""
        ...

    async def release(self, key: str) -> None:
        """Forget ``key``: processing failed, so the provider's retry must be accepted."""
        ...


class MemoryOptOutStore:
    """In-memory :class:`OptOutStore` (tests)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], OptOutRecord] = {}

    async def record(self, entry: OptOutRecord) -> None:
        current = self.records.get((entry.scope, entry.phone))
        if current is None or current.at <= entry.at:
            self.records[(entry.scope, entry.phone)] = entry

    async def is_opted_out(self, channel_id: str, phone: str) -> bool:
        return any(
            (rec := self.records.get((scope, phone))) is not None and rec.opted_out
            for scope in (channel_id, ALL_CHANNELS)
        )


class MemorySentStore:
    """In-memory :class:`SentStore` (tests)."""

    def __init__(self) -> None:
        self.by_id: dict[str, SentRecord] = {}
        self.by_key: dict[tuple[str, str], SentRecord] = {}

    async def remember(self, record: SentRecord) -> None:
        self.by_id[record.message_id] = record
        self.by_key[(record.channel_id, record.idempotency_key)] = record

    async def by_message_id(self, message_id: str) -> SentRecord | None:
        return self.by_id.get(message_id)

    async def by_idempotency_key(self, channel_id: str, key: str) -> SentRecord | None:
        return self.by_key.get((channel_id, key))


class MemoryPartsStore:
    """In-memory :class:`PartsStore` (tests)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[int, StoredPart]] = {}
        self.tombstones: dict[str, float] = {}

    async def add(self, part: StoredPart) -> tuple[StoredPart, ...] | None:
        until = self.tombstones.get(part.part_id)
        if until is not None and until > part.first_seen:
            return None
        group = self.groups.setdefault(part.group, {})
        if group:
            first_seen = min(p.first_seen for p in group.values())
            part = StoredPart(**{**_fields(part), "first_seen": first_seen})
        group.setdefault(part.seq, part)
        return tuple(group[seq] for seq in sorted(group))

    async def get(self, group: str) -> tuple[StoredPart, ...]:
        parts = self.groups.get(group, {})
        return tuple(parts[seq] for seq in sorted(parts))

    async def pop(self, group: str, *, tombstone_until: float) -> tuple[StoredPart, ...]:
        parts = self.groups.pop(group, {})
        for part in parts.values():
            self.tombstones[part.part_id] = tombstone_until
        return tuple(parts[seq] for seq in sorted(parts))

    async def expired(self, first_seen_before: float) -> list[str]:
        return [
            name
            for name, parts in self.groups.items()
            if parts and min(p.first_seen for p in parts.values()) < first_seen_before
        ]


class MemoryNonceStore:
    """In-memory :class:`NonceStore` (tests)."""

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}

    async def claim(self, key: str, *, expires_at: float, now: float) -> bool:
        held = self.keys.get(key)
        if held is not None and held > now:
            return False
        self.keys[key] = expires_at
        return True

    async def release(self, key: str) -> None:
        self.keys.pop(key, None)


def _fields(part: StoredPart) -> dict[str, Any]:
    return {name: getattr(part, name) for name in StoredPart.__slots__}


@dataclass(slots=True)
class SmsStores:
    """The four stores one channel instance uses; defaults are in-memory."""

    opt_outs: OptOutStore = field(default_factory=MemoryOptOutStore)
    sent: SentStore = field(default_factory=MemorySentStore)
    parts: PartsStore = field(default_factory=MemoryPartsStore)
    nonces: NonceStore = field(default_factory=MemoryNonceStore)
