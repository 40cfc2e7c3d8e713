"""The mailbox position store on a key-value store shaped like the hub's ``StateStore``."""

from __future__ import annotations

from typing import Any

from channels.email.state import KeyValueMailboxStateStore, MailboxState


class DictKV:
    """An in-memory stand-in for hub.state.StateStore (same get/put signatures)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, str], dict[str, Any]] = {}

    async def get(self, scope: str, namespace: str, key: str) -> dict[str, Any] | None:
        return self.data.get((scope, namespace, key))

    async def put(self, scope: str, namespace: str, key: str, value: dict[str, Any]) -> None:
        self.data[(scope, namespace, key)] = value


async def test_round_trip_per_channel_and_mailbox() -> None:
    kv = DictKV()
    store = KeyValueMailboxStateStore(kv)
    assert await store.get("support", "INBOX") is None
    await store.set("support", "INBOX", MailboxState(77, 1200))
    await store.set("sales", "INBOX", MailboxState(5, 3))
    assert await store.get("support", "INBOX") == MailboxState(77, 1200)
    assert await store.get("sales", "INBOX") == MailboxState(5, 3)
    assert kv.data[("support", "imap", "INBOX")] == {"uidvalidity": 77, "last_uid": 1200}


async def test_unreadable_value_means_resync() -> None:
    kv = DictKV()
    kv.data[("support", "imap", "INBOX")] = {"uidvalidity": "x"}
    assert await KeyValueMailboxStateStore(kv).get("support", "INBOX") is None
