"""The SMS channel's four state stores (``channels.sms.stores``) on the hub's :class:`StateStore`.

Why the database and not memory: an opt-out must survive a restart (texting someone who sent
STOP is a compliance breach), a delivery report can arrive days after the send, a webhook
replay must be refused by every hub process, and parts of a long message may straddle a
restart. Everything lives in the ``channel_state`` table, scoped by the channel's address (its
E.164 number) or ``*`` for a STOPALL, so SQLite and PostgreSQL behave the same.

Atomicity comes from :meth:`StateStore.claim` (insert-if-absent): the first copy of a part and
the first sighting of a webhook signature win, whichever process sees them.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.sms.stores import (
    ALL_CHANNELS,
    OptOutRecord,
    SentRecord,
    SmsStores,
    StoredPart,
)
from hub.state import StateStore

OPT_OUT_NS = "sms.optout"
SENT_NS = "sms.sent"
SENT_KEY_NS = "sms.sent_key"
GROUP_NS = "sms.group"
PART_NS = "sms.part"
JOINED_NS = "sms.joined"
NONCE_NS = "sms.nonce"

SENT_TTL = timedelta(days=14)  # delivery reports arrive within days (Kannel DLR validity)
PARTS_TTL = timedelta(days=2)  # garbage bound; run() flushes groups long before


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class DbOptOutStore:
    """Latest keyword state per (scope, phone); never expires."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    async def record(self, entry: OptOutRecord) -> None:
        # Read-compare-write: two keyword texts from one phone within the same instant are the
        # only race, and then either order is a faithful reading of what the customer sent.
        current = await self.state.get(entry.scope, OPT_OUT_NS, entry.phone)
        if current is not None and datetime.fromisoformat(current["at"]) > entry.at:
            return
        value = {"opted_out": entry.opted_out, "keyword": entry.keyword, "at": entry.at.isoformat()}
        await self.state.put(entry.scope, OPT_OUT_NS, entry.phone, value)

    async def is_opted_out(self, channel_id: str, phone: str) -> bool:
        for scope in (channel_id, ALL_CHANNELS):
            current = await self.state.get(scope, OPT_OUT_NS, phone)
            if current is not None and current.get("opted_out"):
                return True
        return False


def _sent_to_dict(record: SentRecord) -> dict[str, Any]:
    return {
        "message_id": record.message_id,
        "channel_id": record.channel_id,
        "to": record.to,
        "conversation_id": record.conversation_id,
        "idempotency_key": record.idempotency_key,
        "segments": record.segments,
        "sent_at": record.sent_at.isoformat(),
    }


def _sent_from_dict(value: dict[str, Any]) -> SentRecord:
    return SentRecord(
        message_id=str(value["message_id"]),
        channel_id=str(value["channel_id"]),
        to=str(value["to"]),
        conversation_id=str(value["conversation_id"]),
        idempotency_key=str(value["idempotency_key"]),
        segments=int(value["segments"]),
        sent_at=datetime.fromisoformat(value["sent_at"]),
    )


class DbSentStore:
    """What one channel sent, by message id and by idempotency key, kept for the DLR window."""

    def __init__(self, state: StateStore, scope: str) -> None:
        self.state = state
        self.scope = scope

    async def remember(self, record: SentRecord) -> None:
        value = _sent_to_dict(record)
        until = record.sent_at + SENT_TTL
        await self.state.put(record.channel_id, SENT_NS, record.message_id, value, until)
        await self.state.put(record.channel_id, SENT_KEY_NS, record.idempotency_key, value, until)

    async def by_message_id(self, message_id: str) -> SentRecord | None:
        value = await self.state.get(self.scope, SENT_NS, message_id)
        return _sent_from_dict(value) if value is not None else None

    async def by_idempotency_key(self, channel_id: str, key: str) -> SentRecord | None:
        value = await self.state.get(channel_id, SENT_KEY_NS, key)
        return _sent_from_dict(value) if value is not None else None


def _part_to_dict(part: StoredPart) -> dict[str, Any]:
    return {
        "group": part.group,
        "seq": part.seq,
        "total": part.total,
        "part_id": part.part_id,
        "sender": part.sender,
        "recipient": part.recipient,
        "text": part.text,
        "received_at": part.received_at.isoformat(),
        "first_seen": part.first_seen,
        "metadata": dict(part.metadata),
    }


def _part_from_dict(value: dict[str, Any]) -> StoredPart:
    return StoredPart(
        group=str(value["group"]),
        seq=int(value["seq"]),
        total=int(value["total"]),
        part_id=str(value["part_id"]),
        sender=str(value["sender"]),
        recipient=value["recipient"],
        text=str(value["text"]),
        received_at=datetime.fromisoformat(value["received_at"]),
        first_seen=float(value["first_seen"]),
        metadata=dict(value.get("metadata") or {}),
    )


class DbPartsStore:
    """Parts of concatenated messages: one row per group (its first sighting), one per part
    (first copy wins), and a tombstone per joined part id."""

    def __init__(self, state: StateStore, scope: str) -> None:
        self.state = state
        self.scope = scope

    @staticmethod
    def _gkey(group: str) -> str:
        return hashlib.sha256(group.encode()).hexdigest()[:40]  # groups hold numbers: no PII

    async def add(self, part: StoredPart) -> tuple[StoredPart, ...] | None:
        joined = await self.state.get(self.scope, JOINED_NS, part.part_id)
        if joined is not None and float(joined["until"]) > part.first_seen:
            return None
        gkey = self._gkey(part.group)
        until = _ts(time.time()) + PARTS_TTL
        head = {"group": part.group, "first_seen": part.first_seen}
        await self.state.claim(self.scope, GROUP_NS, gkey, head, until)
        held = await self.state.get(self.scope, GROUP_NS, gkey)
        first_seen = float(held["first_seen"]) if held is not None else part.first_seen
        value = {**_part_to_dict(part), "first_seen": first_seen}
        await self.state.claim(self.scope, PART_NS, f"{gkey}#{part.seq:05d}", value, until)
        return await self.get(part.group)

    async def get(self, group: str) -> tuple[StoredPart, ...]:
        rows = await self.state.items(self.scope, PART_NS, prefix=f"{self._gkey(group)}#")
        parts = [_part_from_dict(v) for _, v in rows if v.get("group") == group]
        return tuple(sorted(parts, key=lambda p: p.seq))

    async def pop(self, group: str, *, tombstone_until: float) -> tuple[StoredPart, ...]:
        parts = await self.get(group)
        gkey = self._gkey(group)
        for part in parts:  # tombstone first: a crash in between leaves no phantom group
            marker = {"until": tombstone_until}
            await self.state.put(self.scope, JOINED_NS, part.part_id, marker, _ts(tombstone_until))
        for part in parts:
            await self.state.delete(self.scope, PART_NS, f"{gkey}#{part.seq:05d}")
        await self.state.delete(self.scope, GROUP_NS, gkey)
        return parts

    async def expired(self, first_seen_before: float) -> list[str]:
        heads = await self.state.items(self.scope, GROUP_NS)
        return [str(v["group"]) for _, v in heads if float(v["first_seen"]) < first_seen_before]


class DbNonceStore:
    """Webhook signatures already accepted, until their replay window ends."""

    def __init__(self, state: StateStore, scope: str) -> None:
        self.state = state
        self.scope = scope

    async def claim(self, key: str, *, expires_at: float, now: float) -> bool:
        return await self.state.claim(self.scope, NONCE_NS, key[:500], {}, _ts(expires_at))

    async def release(self, key: str) -> None:
        await self.state.delete(self.scope, NONCE_NS, key[:500])


def db_sms_stores(state: StateStore, channel_id: str) -> SmsStores:
    """All four stores for the channel whose address is ``channel_id``."""
    return SmsStores(
        opt_outs=DbOptOutStore(state),
        sent=DbSentStore(state, channel_id),
        parts=DbPartsStore(state, channel_id),
        nonces=DbNonceStore(state, channel_id),
    )
