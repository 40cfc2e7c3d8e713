"""Where the receive loop remembers how far it has read each mailbox.

IMAP UIDs only mean something together with the mailbox's UIDVALIDITY; the pair
``(uidvalidity, last_uid)`` is stored per ``(channel_id, mailbox)`` by the hub (in its DB, so a
restart on another machine resumes at the same point). ``last_uid`` only ever moves forward,
and only after every message up to it was committed by the sink and flagged on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class MailboxState:
    uidvalidity: int
    last_uid: int


class MailboxStateStore(Protocol):
    """Persisted read position per mailbox; the hub implements it on its DB."""

    async def get(self, channel_id: str, mailbox: str) -> MailboxState | None: ...

    async def set(self, channel_id: str, mailbox: str, state: MailboxState) -> None: ...


class InMemoryMailboxStateStore:
    """A process-local store (tests, or a deployment that accepts an UNSEEN resync on restart)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], MailboxState] = {}

    async def get(self, channel_id: str, mailbox: str) -> MailboxState | None:
        return self._data.get((channel_id, mailbox))

    async def set(self, channel_id: str, mailbox: str, state: MailboxState) -> None:
        self._data[(channel_id, mailbox)] = state


class KeyValueStore(Protocol):
    """The shape of the hub's durable channel state (``hub.state.StateStore``)."""

    async def get(self, scope: str, namespace: str, key: str) -> dict[str, Any] | None: ...

    async def put(self, scope: str, namespace: str, key: str, value: dict[str, Any]) -> None: ...


class KeyValueMailboxStateStore:
    """:class:`MailboxStateStore` on a generic key-value store: scope = channel id, namespace
    ``imap``, key = mailbox name, value ``{"uidvalidity": int, "last_uid": int}``."""

    namespace = "imap"

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    async def get(self, channel_id: str, mailbox: str) -> MailboxState | None:
        value = await self._kv.get(channel_id, self.namespace, mailbox)
        if not value:
            return None
        try:
            return MailboxState(int(value["uidvalidity"]), int(value["last_uid"]))
        except (KeyError, TypeError, ValueError):
            return None  # unreadable: resync (UNSEEN) rather than guess a position

    async def set(self, channel_id: str, mailbox: str, state: MailboxState) -> None:
        await self._kv.put(channel_id, self.namespace, mailbox,
                           {"uidvalidity": state.uidvalidity, "last_uid": state.last_uid})
