"""Group commit keeps ingest's and the dispatcher's guarantees when many items arrive at once.

Concurrent ingests are written in one transaction (hub.actions.intake_batch) and the dispatcher
handles their ``conversation.queued`` events together (one router pass, one transaction). These
tests drive real bursts on SQLite and PostgreSQL and check what must not change: one stored
message per delivery key, one contact per address, gap-free ``seq``, events only after commit,
offers persisted before they are emitted, one caller's bad item failing only that caller, and
the router rebuilt from the DB when a batch's commands fail.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, insert, select

import hub.actions.ingest as ingest_mod
import hub.dispatch.executor as executor_mod
from channels.base import ChannelKind
from hub.actions import intake_batch
from hub.actions.batch_writer import AsyncWriter, SqliteWriter, insert_rows
from hub.actions.log import append
from hub.app import create_app
from hub.config import apply_config, parse_config
from hub.db.base import Base
from hub.db.models import Agent, Contact, Conversation, Interaction, Offer
from hub.domain import ActorType, Direction, InteractionKind
from hub.events import Event
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.test_ingest import make_ingestor


def spy_batches(monkeypatch: pytest.MonkeyPatch, *, attempts: bool = False) -> list[int]:
    """Record the size of every batch ingest wrote together (or, with ``attempts``, tried to):
    proves the burst was grouped, and not silently saved by the one-by-one fallback."""
    sizes: list[int] = []
    real = intake_batch.ingest_batch

    def spy(conn: Any, items: list[Any], **kw: Any) -> None:
        if attempts:
            sizes.append(len(items))
        real(conn, items, **kw)
        if not attempts:
            sizes.append(len(items))

    monkeypatch.setattr(ingest_mod, "ingest_batch", spy)
    return sizes


async def seqs(db: Db, conversation_id: str) -> list[int]:
    async with db.sessions() as s:
        rows = await s.execute(
            select(Interaction.seq)
            .where(Interaction.conversation_id == conversation_id)
            .order_by(Interaction.seq)
        )
        return [int(x) for x in rows.scalars()]


async def test_concurrent_duplicates_in_one_batch_are_stored_once(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = spy_batches(monkeypatch)
    ingest, bus, _ = make_ingestor(db)
    msgs = [inbound(ChannelKind.SMS, f"+1415555{n:04d}", f"dup-{n}") for n in range(5)]
    receipts = await asyncio.gather(*(ingest(m) for m in msgs * 4))
    assert max(sizes) > 1  # the burst really was written as a group
    by_key: dict[str, list[Any]] = {}
    for msg, r in zip(msgs * 4, receipts, strict=True):
        by_key.setdefault(msg.external_id, []).append(r)
    for rs in by_key.values():
        assert sum(r.created for r in rs) == 1
        assert len({(r.interaction_id, r.conversation_id, r.contact_id) for r in rs}) == 1
    async with db.sessions() as s:
        stored = (await s.execute(select(func.count()).select_from(Interaction))).scalar_one()
    assert stored == 5
    assert Counter(bus.names())["conversation.queued"] == 5


async def test_one_new_address_in_a_batch_is_one_contact_and_one_gapless_thread(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = spy_batches(monkeypatch)
    ingest, bus, _ = make_ingestor(db)
    msgs = [inbound(ChannelKind.SMS, "+14155550199", f"burst-{n}", f"part {n}") for n in range(8)]
    receipts = await asyncio.gather(*(ingest(m) for m in msgs))
    assert max(sizes) > 1
    assert all(r.created for r in receipts)
    assert len({r.contact_id for r in receipts}) == 1
    assert len({r.conversation_id for r in receipts}) == 1  # the open case is continued
    assert await seqs(db, receipts[0].conversation_id) == list(range(1, 9))
    async with db.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(Contact))).scalar_one() == 1
    names = Counter(bus.names())
    assert names["contact.created"] == 1 and names["conversation.queued"] == 1
    created = [e.data["seq"] for e in bus.seen if e.name == "interaction.created"]
    assert sorted(created) == list(range(1, 9))


async def test_seq_stays_gapless_when_a_batch_meets_other_writers(db: Db) -> None:
    ingest, _, _ = make_ingestor(db)
    first = await ingest(inbound(ChannelKind.SMS, "+14155550142", "first"))
    conv_id = first.conversation_id

    async def note(n: int) -> None:  # another action appending to the same log meanwhile
        async with db.sessions() as s, s.begin():
            await append(
                s,
                conv_id,
                kind=InteractionKind.NOTE,
                direction=Direction.INTERNAL,
                channel="sms",
                actor_type=ActorType.SYSTEM,
                text=f"note {n}",
            )

    burst = [ingest(inbound(ChannelKind.SMS, "+14155550142", f"more-{n}")) for n in range(6)]
    await asyncio.gather(*burst, *(note(n) for n in range(4)))
    assert await seqs(db, conv_id) == list(range(1, 12))


async def test_events_are_published_after_the_batch_committed(db: Db) -> None:
    ingest, bus, _ = make_ingestor(db)
    visible: list[bool] = []

    async def check(event: Event) -> None:
        if event.name == "interaction.created":
            async with db.sessions() as s:  # another connection: sees only committed rows
                visible.append(await s.get(Interaction, event.data["id"]) is not None)

    bus.subscribe(check)
    await asyncio.gather(
        *(ingest(inbound(ChannelKind.SMS, f"+1415556{n:04d}", f"ev-{n}")) for n in range(6))
    )
    assert visible == [True] * 6


async def test_a_bad_item_fails_only_its_own_caller(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = spy_batches(monkeypatch, attempts=True)
    ingest, _, _ = make_ingestor(db)
    good = [inbound(ChannelKind.SMS, f"+1415557{n:04d}", f"ok-{n}") for n in range(4)]
    bad = inbound(ChannelKind.SMS, "+14155579999", "bad", metadata={"x": object()})  # not JSON
    results = await asyncio.gather(
        *(ingest(m) for m in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert max(sizes) > 1
    assert isinstance(results[2], Exception)
    assert all(
        not isinstance(r, BaseException) and r.created for i, r in enumerate(results) if i != 2
    )
    async with db.sessions() as s:
        stored = (await s.execute(select(func.count()).select_from(Interaction))).scalar_one()
    assert stored == 4


async def test_ingest_many_answers_each_item_in_order_like_one_by_one(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetched batch handed over in one call: one group commit, each item's own outcome in
    order (a bad item fails alone), a repeated item stored once, one event per stored item."""
    sizes = spy_batches(monkeypatch, attempts=True)
    ingest, bus, _ = make_ingestor(db)
    good = [inbound(ChannelKind.EMAIL, f"c{n}@example.com", f"<m{n}@x>") for n in range(4)]
    bad = inbound(ChannelKind.EMAIL, "bad@example.com", "<bad@x>", metadata={"x": object()})
    out = await ingest.ingest_many([good[0], good[1], bad, good[2], good[0], good[3]])
    assert sizes[0] == 6  # all in the one batch
    assert isinstance(out[2], Exception)
    receipts = [r for i, r in enumerate(out) if i != 2]
    assert all(not isinstance(r, BaseException) for r in receipts)
    assert [getattr(r, "created", None) for r in receipts] == [True, True, True, False, True]
    assert getattr(receipts[0], "interaction_id", 0) == getattr(receipts[3], "interaction_id", 1)
    async with db.sessions() as s:
        stored = (await s.execute(select(func.count()).select_from(Interaction))).scalar_one()
    assert stored == 4
    assert Counter(bus.names())["interaction.created"] == 4


CENTER_HEAD = """
skills: [english]
queues:
  - name: general
    required_skills: [{skill: english, min_level: 1}]
    offer_ttl_s: 600
channels:
  - kind: sms
    name: sms-line
    address: "+14155550100"
    queue: general
agents:
"""
AGENT = """  - email: a{n}@t.test
    name: A{n}
    skills: {{english: 3}}
    capacity: {{sms: 2}}
"""


async def burst_center(db: Db, agents: int) -> None:
    text = CENTER_HEAD + "".join(AGENT.format(n=n) for n in range(agents))
    await apply_config(db.sessions, parse_config(text), env={})
    async with db.sessions() as s, s.begin():
        for agent in (await s.execute(select(Agent))).scalars():
            agent.presence = "ready"


async def started(app: Any) -> Any:
    dispatcher = app.services.extras["dispatcher"]
    for _ in range(200):
        if dispatcher.router.snapshot().agents_logged_in:
            return dispatcher
        await asyncio.sleep(0.05)
    raise AssertionError("dispatcher did not start")


async def test_burst_gets_one_persisted_offer_per_item_on_distinct_agents(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    await burst_center(db, agents=8)
    offer_batches: list[int] = []
    real = executor_mod._send_offers

    async def spy(session: Any, offers: list[Any], rejected: list[str]) -> Any:
        offer_batches.append(len(offers))
        return await real(session, offers, rejected)

    monkeypatch.setattr(executor_mod, "_send_offers", spy)
    app = create_app(db.settings)
    async with app.lifespan():
        await started(app)
        persisted: list[bool] = []

        async def on_offer(event: Event) -> None:
            if event.name == "offer":
                async with app.services.sessions() as s:
                    persisted.append(await s.get(Offer, event.data["offer_id"]) is not None)

        app.services.bus.subscribe(on_offer)
        receipts = await asyncio.gather(
            *(
                app.services.ingestor(
                    inbound(
                        ChannelKind.SMS, f"+1415558{n:04d}", f"o-{n}", channel_id="+14155550100"
                    )
                )
                for n in range(8)
            )
        )
    assert max(offer_batches) > 1  # the dispatcher handled the burst as a group
    assert persisted == [True] * 8
    async with db.sessions() as s:
        offers = list((await s.execute(select(Offer))).scalars())
        statuses = {c.id: c.status for c in (await s.execute(select(Conversation))).scalars()}
    assert sorted(o.conversation_id for o in offers) == sorted(r.conversation_id for r in receipts)
    assert len({o.agent_id for o in offers}) == 8  # one live offer per agent
    assert set(statuses.values()) == {"offered"}
    for r in receipts:
        assert await seqs(db, r.conversation_id) == [1, 2]  # message, then the offer


async def test_failed_batch_execution_rebuilds_router_and_still_offers_everything(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    await burst_center(db, agents=6)
    real = executor_mod._send_offers
    failures = [RuntimeError("db went away mid-batch")]

    async def flaky(session: Any, offers: list[Any], rejected: list[str]) -> Any:
        if failures and len(offers) > 1:
            raise failures.pop()
        return await real(session, offers, rejected)

    monkeypatch.setattr(executor_mod, "_send_offers", flaky)
    app = create_app(db.settings)
    async with app.lifespan():
        dispatcher = await started(app)
        receipts = await asyncio.gather(
            *(
                app.services.ingestor(
                    inbound(
                        ChannelKind.SMS, f"+1415559{n:04d}", f"f-{n}", channel_id="+14155550100"
                    )
                )
                for n in range(6)
            )
        )
        assert not failures  # the failing batch happened
        assert dispatcher.router.snapshot().live_offers == 6
    async with db.sessions() as s:
        offers = list((await s.execute(select(Offer))).scalars())
    assert sorted(o.conversation_id for o in offers) == sorted(r.conversation_id for r in receipts)
    for r in receipts:
        assert await seqs(db, r.conversation_id) == [1, 2]  # nothing half-written survived


async def test_a_burst_mixing_replies_duplicates_and_new_mail_threads_like_one_by_one(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = spy_batches(monkeypatch)
    ingest, _, _ = make_ingestor(db)
    first = inbound(ChannelKind.EMAIL, "ann@example.com", "<a1@example.com>", "help")
    root = await ingest(first)
    reply = inbound(
        ChannelKind.EMAIL,
        "bob@example.com",  # another sender: only the reference can thread it there
        "<b1@example.com>",
        "me too",
        thread_refs=("<a1@example.com>",),
    )
    fresh = [
        inbound(ChannelKind.EMAIL, f"c{n}@example.com", f"<c{n}@example.com>") for n in range(3)
    ]
    again = inbound(ChannelKind.EMAIL, "ann@example.com", "<a2@example.com>", "anyone?")
    results = await asyncio.gather(*(ingest(m) for m in [first, reply, *fresh, again]))
    assert max(sizes) > 1
    dup, threaded, *new, continued = results
    assert not dup.created and dup.interaction_id == root.interaction_id
    assert threaded.conversation_id == root.conversation_id
    assert continued.conversation_id == root.conversation_id
    assert len({r.conversation_id for r in new}) == 3
    assert await seqs(db, root.conversation_id) == [1, 2, 3]


async def test_a_burst_over_many_open_chats_numbers_them_all_in_one_update(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Existing conversations take their ``seq`` numbers in ONE ``UPDATE ... RETURNING`` per
    batch (one statement per conversation was most of a busy batch's round trips), and each
    thread still counts on without gaps, a chat with two items in the batch included."""
    ingest, _, _ = make_ingestor(db)
    visitors = [f"v-many-{n}" for n in range(6)]
    firsts = [await ingest(inbound(ChannelKind.WEBCHAT, v, f"{v}:0")) for v in visitors]
    updates: list[str] = []

    def count_updates(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE CONVERSATIONS"):
            updates.append(statement)

    event.listen(Engine, "before_cursor_execute", count_updates)
    try:
        sizes = spy_batches(monkeypatch)
        burst = [inbound(ChannelKind.WEBCHAT, v, f"{v}:1") for v in visitors]
        burst.append(inbound(ChannelKind.WEBCHAT, visitors[0], f"{visitors[0]}:2"))
        receipts = await asyncio.gather(*(ingest(m) for m in burst))
    finally:
        event.remove(Engine, "before_cursor_execute", count_updates)
    assert sizes == [len(burst)]  # one batch, so the count below is that batch's
    assert len(updates) == 2  # one per distinct count taken (1 entry, 2 entries)
    for first, receipt in zip(firsts, receipts, strict=False):
        assert receipt.conversation_id == first.conversation_id
    assert await seqs(db, firsts[0].conversation_id) == [1, 2, 3]
    for first in firsts[1:]:
        assert await seqs(db, first.conversation_id) == [1, 2]


async def test_a_conversation_gone_under_a_batch_sends_its_items_one_by_one(db: Db) -> None:
    """The batch's numbering UPDATE does not find a conversation it read (deleted between its
    reads and writes): the batch rolls back and each item is decided again on the one-by-one
    path, so nothing is lost or numbered twice."""
    ingest, _, _ = make_ingestor(db)
    gone = await ingest(inbound(ChannelKind.WEBCHAT, "v-gone", "v-gone:0"))
    kept = await ingest(inbound(ChannelKind.WEBCHAT, "v-kept", "v-kept:0"))
    real = intake_batch._Batch.prefetch
    attempts: list[int] = []

    def prefetch_losing_one(self: Any, items: list[Any]) -> None:
        real(self, items)
        attempts.append(len(items))
        for conv in self.convs.values():  # as if its row vanished after this read
            if conv.id == gone.conversation_id:
                conv.id = "conversation_that_is_not_there"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(intake_batch._Batch, "prefetch", prefetch_losing_one)
        a, b = await asyncio.gather(
            ingest(inbound(ChannelKind.WEBCHAT, "v-gone", "v-gone:1")),
            ingest(inbound(ChannelKind.WEBCHAT, "v-kept", "v-kept:1")),
        )
    assert attempts == [2]  # the batch was tried once, not retried as a lost race
    assert a.created and b.created
    assert (a.conversation_id, b.conversation_id) == (gone.conversation_id, kept.conversation_id)
    assert await seqs(db, gone.conversation_id) == [1, 2]
    assert await seqs(db, kept.conversation_id) == [1, 2]


async def test_sqlite_batches_wait_for_the_write_lock_in_their_thread(db: Db) -> None:
    """On SQLite a batch is one ``BEGIN IMMEDIATE`` transaction: while another connection holds
    the write lock the batch waits in the writer's own thread (the event loop keeps running and
    nothing is acked), then commits once the lock is free. On PostgreSQL the batch runs on a
    pooled async connection."""
    ingest, _, _ = make_ingestor(db)
    if db.dialect == "postgres":
        assert isinstance(ingest._writer, AsyncWriter)
        return
    assert isinstance(ingest._writer, SqliteWriter)
    await ingest(inbound(ChannelKind.WEBCHAT, "v-lock", "v-lock:0"))  # warm catalog + thread
    async with db.engine.connect() as other:
        await other.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the lock
        task = asyncio.create_task(ingest(inbound(ChannelKind.WEBCHAT, "v-lock", "v-lock:1")))
        ticks = 0
        for _ in range(30):  # the loop is not blocked by the waiting batch
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 30 and not task.done()  # not acked while it cannot commit
        await other.rollback()
    receipt = await asyncio.wait_for(task, 15)
    assert receipt.created and ingest._writer.waited == 1
    assert await seqs(db, receipt.conversation_id) == [1, 2]


def test_insert_rows_stores_what_sqlalchemys_executemany_stores(tmp_path: Path) -> None:
    """``insert_rows`` (the batch's INSERTs with the per-row work done once) and SQLAlchemy's
    own executemany leave byte-identical rows: timestamps, JSON (None included), text."""
    now = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {
            "id": f"ix_{i}",
            "seq": i,
            "conversation_id": "cv_1",
            "kind": "message",
            "direction": "inbound",
            "channel": "email",
            "actor_type": "contact",
            "actor_id": None if i % 2 else "ct_1",
            "text": f"caf\u00e9 {i}",
            "html": None,
            "subject": "Question",
            "payload": {"metadata": {"to": ["a@example.com"], "n": i}, "none": None}
            if i % 3
            else {},
            "external_id": f"<m{i}@example.com>",
            "dedupe_key": f"email:s:{i}",
            # the batch's one timestamp, and one in another zone
            "created_at": now if i != 2 else now.astimezone(UTC) + timedelta(hours=1),
        }
        for i in range(6)
    ]
    stored = []
    for fast in (False, True):
        engine = create_engine(f"sqlite:///{tmp_path / f'{fast}.db'}")
        Base.metadata.create_all(engine)
        stmt = insert(Interaction.__table__)  # type: ignore[arg-type]
        with engine.begin() as conn:
            if fast:
                insert_rows(conn, stmt, rows)
                insert_rows(conn, stmt, [{**rows[0], "id": "ix_x", "dedupe_key": "x"}])
            else:
                conn.execute(stmt, rows)
                conn.execute(stmt, [{**rows[0], "id": "ix_x", "dedupe_key": "x"}])
            stored.append(conn.exec_driver_sql("SELECT * FROM interactions ORDER BY id").all())
        engine.dispose()
    assert stored[0] == stored[1]
    assert len(stored[0]) == 7
