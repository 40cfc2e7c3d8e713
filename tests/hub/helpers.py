"""Small builders shared by hub tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from channels.base import Address, AddressKind, ChannelKind, Inbound
from hub.events import Event, EventBus


class RecordingBus(EventBus):
    """The real bus, remembering what was published so tests can assert on it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Event] = []

    async def publish(self, events: list[Event]) -> None:
        self.seen.extend(events)
        await super().publish(events)

    def names(self) -> list[str]:
        return [e.name for e in self.seen]


class MemoryMedia:
    """Content-addressed bytes kept in a dict (the hub's media store interface)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, data: bytes, content_type: str) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.blobs[key] = data
        return key


def inbound(
    channel: ChannelKind,
    sender: str,
    external_id: str,
    text: str = "hello",
    *,
    kind: AddressKind | None = None,
    channel_id: str = "main",
    **extra: object,
) -> Inbound:
    addr_kind = kind or {
        ChannelKind.EMAIL: AddressKind.EMAIL,
        ChannelKind.WEBCHAT: AddressKind.VISITOR,
    }.get(channel, AddressKind.PHONE)
    return Inbound(
        channel=channel,
        channel_id=channel_id,
        external_id=external_id,
        sender=Address(addr_kind, sender),
        text=text,
        received_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        **extra,  # type: ignore[arg-type]
    )
