"""The receive loop handing whole batches to a sink that takes them (channels/email/batch_sink.py),
against a real Dovecot: the same guarantees as one call per mail."""

from __future__ import annotations

import asyncio

from channels.base import Inbound
from channels.email.batch_sink import BatchSink
from channels.email.state import InMemoryMailboxStateStore
from tests.servers.dovecot import Dovecot

from .conftest import BatchRecordingSink, make_mail
from .test_email_imap import _channel, eventually, flags_by_uid, running


async def test_whole_batch_in_one_call_flagged_after_commit(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(5)])
    seen_at_commit: list[str] = []

    async def before_commit(inbound: Inbound) -> None:
        flags = await asyncio.to_thread(flags_by_uid, dovecot, user)
        seen_at_commit.extend(f for f in flags.values() if "\\Seen" in f)

    sink = BatchRecordingSink(before_commit=before_commit)
    assert isinstance(sink, BatchSink)
    store = InMemoryMailboxStateStore()
    channel, _ = _channel(dovecot, user, store)
    async with running(channel, sink):
        await sink.wait_for(5)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
        assert all("\\Seen" in f for f in flags_by_uid(dovecot, user).values())
    assert sink.batches == [[f"<m-{i}@example.com>" for i in range(5)]]
    assert seen_at_commit == []
    state = await store.get("support", "INBOX")
    assert state is not None and state.last_uid == 5


async def test_failed_item_stops_the_batch_there_and_is_retried(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(4)])
    failures = {"left": 3}  # backoffs of ~0.05, 0.1, 0.2 s: time to look at the flags

    def fail(inbound: Inbound, _n: int) -> bool:
        if inbound.external_id == "<m-2@example.com>" and failures["left"] > 0:
            failures["left"] -= 1
            return True
        return False

    sink = BatchRecordingSink(fail=fail)
    channel, _ = _channel(dovecot, user)
    async with running(channel, sink):
        await eventually(lambda: failures["left"] == 2)
        await eventually(lambda: "\\Seen" in flags_by_uid(dovecot, user)[2])
        flags = flags_by_uid(dovecot, user)
        await sink.wait_for(4)
        await eventually(lambda: all("\\Seen" in f for f in flags_by_uid(dovecot, user).values()))
    # uid 3 failed: 1-2 flagged, 3 and the committed-anyway 4 left unseen and fetched again
    assert "\\Seen" not in flags[3] and "\\Seen" not in flags[4]
    assert sink.batches[0] == [f"<m-{i}@example.com>" for i in range(4)]
    assert sink.batches[1:] == [["<m-2@example.com>", "<m-3@example.com>"]] * 3
    assert sink.calls.count("<m-0@example.com>") == 1
    assert sorted(sink.stored) == [f"<m-{i}@example.com>" for i in range(4)]
    assert channel.receiver.stats["sink_failures"] == 3


async def test_a_raising_batch_call_leaves_every_mail_unseen(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(3)])
    sink = BatchRecordingSink(raise_batch=lambda n: n == 1)
    store = InMemoryMailboxStateStore()
    channel, _ = _channel(dovecot, user, store)
    async with running(channel, sink):
        await eventually(lambda: len(sink.batches) >= 1)
        flags = flags_by_uid(dovecot, user)
        await sink.wait_for(3)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
    assert not any("\\Seen" in f for f in flags.values())
    assert sink.calls == [f"<m-{i}@example.com>" for i in range(3)]  # once each, second call
    assert channel.receiver.stats["sink_failures"] == 1
    state = await store.get("support", "INBOX")
    assert state is not None and state.last_uid == 3
