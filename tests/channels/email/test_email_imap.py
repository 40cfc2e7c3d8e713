"""The IMAP receive loop against a real throwaway Dovecot (tests/servers/dovecot.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from channels.base import Channel, Inbound, Sink
from channels.email.channel import EmailChannel
from channels.email.config import EmailConfig
from channels.email.state import InMemoryMailboxStateStore, MailboxState
from tests.servers.dovecot import Dovecot, kick

from .conftest import RecordingSink, imap_config, make_mail


@asynccontextmanager
async def running(channel: Channel, sink: Sink) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(channel.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)  # a loop that ignores cancel fails here, not hangs


def flags_by_uid(server: Dovecot, user: str, folder: str = "INBOX") -> dict[int, str]:
    conn = server.client(user)
    try:
        typ, _ = conn.select(folder, readonly=True)
        assert typ == "OK"
        typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
        out: dict[int, str] = {}
        for item in data:
            if isinstance(item, bytes) and b"UID" in item:
                uid = re.search(rb"UID (\d+)", item)
                flags = re.search(rb"FLAGS \(([^)]*)\)", item)
                if uid and flags:
                    out[int(uid.group(1))] = flags.group(1).decode()
        return out
    finally:
        conn.logout()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _channel(server: Dovecot, user: str, store: InMemoryMailboxStateStore | None = None,
             **overrides: object) -> tuple[EmailChannel, EmailConfig]:
    cfg = imap_config(server, user, **overrides)
    return EmailChannel(cfg, store or InMemoryMailboxStateStore()), cfg


async def test_ingest_marks_seen_only_after_commit(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(5)])
    seen_at_commit: list[str] = []

    async def before_commit(inbound: Inbound) -> None:
        # What the server says while the hub is still committing this message.
        flags = await asyncio.to_thread(flags_by_uid, dovecot, user)
        seen_at_commit.extend(f for f in flags.values() if "\\Seen" in f)

    sink = RecordingSink(before_commit=before_commit)
    store = InMemoryMailboxStateStore()
    channel, _ = _channel(dovecot, user, store)
    async with running(channel, sink):
        await sink.wait_for(5)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
        assert all("\\Seen" in f for f in flags_by_uid(dovecot, user).values())
    assert sorted(sink.stored) == sorted(f"<m-{i}@example.com>" for i in range(5))
    assert seen_at_commit == []  # batch flagged after all five commits, none before
    assert sink.stored["<m-3@example.com>"].sender.value == "customer3@example.com"
    state = await store.get("support", "INBOX")
    assert state is not None and state.last_uid == 5


async def test_idle_push_latency(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, idle_max_s=30.0, poll_interval_s=30.0)
    async with running(channel, sink):
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
        await asyncio.sleep(0.3)  # let IDLE start
        latencies = []
        for i in range(3):
            start = time.monotonic()
            await asyncio.to_thread(dovecot.append, user, [make_mail(i, tag="idle")])
            await sink.wait_for(i + 1, timeout=5)
            latencies.append(time.monotonic() - start)
    print(f"IDLE push latency: {[round(x, 3) for x in latencies]} s")
    # Polling is configured at 30 s, so anything this fast came through IDLE.
    assert max(latencies) < 3.0


async def test_restart_resumes_without_loss_or_duplicates(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    store = InMemoryMailboxStateStore()
    sink = RecordingSink()
    dovecot.append(user, [make_mail(i) for i in range(6)])
    channel, _ = _channel(dovecot, user, store)
    async with running(channel, sink):
        await sink.wait_for(6)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)  # marked and saved
    dovecot.append(user, [make_mail(i) for i in range(6, 10)])  # arrives while we are down
    # A person reading the mailbox in webmail must not hide mail from us.
    conn = dovecot.client(user)
    conn.select("INBOX")
    conn.uid("STORE", "7:8", "+FLAGS", "(\\Seen)")
    conn.logout()
    channel2, _ = _channel(dovecot, user, store)
    async with running(channel2, sink):
        await sink.wait_for(10)
        await asyncio.wait_for(channel2.receiver.connected.wait(), 10)
    assert sorted(sink.calls) == sorted(f"<m-{i}@example.com>" for i in range(10))  # once each
    state = await store.get("support", "INBOX")
    assert state is not None and state.last_uid == 10


async def test_sink_failure_keeps_message_unseen_and_retries(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(4)])
    failures = {"left": 3}

    def fail(inbound: Inbound, _n: int) -> bool:
        if inbound.external_id == "<m-2@example.com>" and failures["left"] > 0:
            failures["left"] -= 1
            return True
        return False

    sink = RecordingSink(fail=fail)
    channel, _ = _channel(dovecot, user)
    async with running(channel, sink):
        await sink.wait_for(2)
        flags = flags_by_uid(dovecot, user)
        await eventually(lambda: failures["left"] == 0)
        await sink.wait_for(4)
        await eventually(lambda: all("\\Seen" in f for f in flags_by_uid(dovecot, user).values()))
    # While the hub failed on uid 3, it stayed unseen; earlier ones were already flagged.
    assert "\\Seen" not in flags[3] and "\\Seen" not in flags[4]
    assert sink.calls.count("<m-2@example.com>") == 4  # three failures, one success
    assert sink.calls.count("<m-0@example.com>") == 1  # committed ones are not re-read
    assert channel.receiver.stats["sink_failures"] == 3


async def test_unparseable_mail_is_quarantined_not_lost(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    bad = b"Subject: no sender\r\nMessage-ID: <bad@x>\r\n\r\nwho sent this?\r\n"
    dovecot.append(user, [make_mail(0), bad, make_mail(2)])
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user)
    async with running(channel, sink):
        await sink.wait_for(2)
        await eventually(lambda: channel.receiver.stats["quarantined"] == 1)
    assert len(flags_by_uid(dovecot, user, "Quarantine")) == 1
    assert sorted(sink.stored) == ["<m-0@example.com>", "<m-2@example.com>"]
    assert 2 not in flags_by_uid(dovecot, user)  # moved out of the inbox
    assert channel.receiver.stats["quarantined"] == 1


async def test_unparseable_without_quarantine_stays_unseen_and_flagged(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [b"Subject: x\r\n\r\nno sender\r\n", make_mail(1)])
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, quarantine_folder=None)
    async with running(channel, sink):
        await sink.wait_for(1)
        await eventually(lambda: "$ParseFailed" in flags_by_uid(dovecot, user).get(1, ""))
    assert "\\Seen" not in flags_by_uid(dovecot, user)[1]


async def test_polling_fallback_without_idle(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, use_idle=False, poll_interval_s=0.2)
    async with running(channel, sink):
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
        dovecot.append(user, [make_mail(1, tag="poll")])
        await sink.wait_for(1, timeout=5)
    assert list(sink.stored) == ["<poll-1@example.com>"]


async def test_move_mode_moves_committed_mail(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(3)])
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, after_ingest="move")
    async with running(channel, sink):
        await sink.wait_for(3)
        await eventually(lambda: len(flags_by_uid(dovecot, user, "Processed")) == 3)
    assert flags_by_uid(dovecot, user) == {}


async def test_uidvalidity_change_resyncs_unseen_only(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i) for i in range(4)])
    conn = dovecot.client(user)
    conn.select("INBOX")
    conn.uid("STORE", "1", "+FLAGS", "(\\Seen)")  # already handled before the mailbox moved
    conn.logout()
    store = InMemoryMailboxStateStore()
    await store.set("support", "INBOX", MailboxState(uidvalidity=1, last_uid=999))
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, store)
    async with running(channel, sink):
        await sink.wait_for(3)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
    assert sorted(sink.calls) == [f"<m-{i}@example.com>" for i in (1, 2, 3)]
    state = await store.get("support", "INBOX")
    assert state is not None and state.uidvalidity != 1 and state.last_uid == 4


async def test_reconnects_after_server_side_disconnect(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, idle_max_s=30.0)
    async with running(channel, sink):
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
        await asyncio.to_thread(kick, dovecot, user)
        await eventually(lambda: channel.receiver.stats["reconnects"] >= 1)
        dovecot.append(user, [make_mail(1, tag="after-kick")])
        await sink.wait_for(1)
    assert list(sink.stored) == ["<after-kick-1@example.com>"]


async def test_connection_refused_backs_off_and_keeps_trying(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    cfg_channel, _ = _channel(dovecot, user, port=1, backoff_initial_s=0.02, backoff_max_s=0.1)
    sink = RecordingSink()
    async with running(cfg_channel, sink) as task:
        await eventually(lambda: cfg_channel.receiver.stats["reconnects"] >= 3, timeout=5)
        assert not task.done()


def test_fetch_parser_handles_uid_after_literal() -> None:
    from channels.email.imap import parse_fetch, uid_set

    lines = [b"1 FETCH (BODY[] {3}", bytearray(b"abc"), b" UID 7)", b"2 FETCH (FLAGS (\\Seen))",
             b"3 FETCH (UID 9 BODY[] {2}", bytearray(b"xy"), b")", b"Fetch completed"]
    assert parse_fetch(lines) == [(7, b"abc"), (9, b"xy")]
    assert uid_set([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"


async def test_batches_are_bounded_by_bytes_and_huge_mail_is_headers_only(
    dovecot: Dovecot,
) -> None:
    user = dovecot.add_user()
    big = make_mail(1, tag="huge", body="x" * 300_000)
    dovecot.append(user, [make_mail(0), big, make_mail(2, body="y" * 40_000),
                          make_mail(3, body="z" * 40_000)])
    sink = RecordingSink()
    channel, _ = _channel(dovecot, user, max_fetch_bytes=200_000, batch_bytes=60_000)
    batches = await _batches_of(channel, dovecot, user)
    assert batches == [[1], [2], [3], [4]]  # 300 kB alone; two 40 kB ones exceed 60 kB together
    async with running(channel, sink):
        await sink.wait_for(4)
        await asyncio.wait_for(channel.receiver.connected.wait(), 10)
    huge = sink.stored["<huge-1@example.com>"]
    assert huge.metadata["body_not_fetched"] is True
    assert huge.subject == "Question 1" and huge.text == ""  # recorded, body left on the server
    assert "body_not_fetched" not in sink.stored["<m-2@example.com>"].metadata
    assert sink.stored["<m-2@example.com>"].text == "y" * 40_000


async def _batches_of(channel: EmailChannel, server: Dovecot, user: str) -> list[list[int]]:
    from channels.email.imap import ImapSession

    session = ImapSession(channel.config.imap)
    await session.connect()
    try:
        await session.select("INBOX")
        return await channel.receiver._batches(session, await session.uid_search("ALL"))
    finally:
        await session.close()
