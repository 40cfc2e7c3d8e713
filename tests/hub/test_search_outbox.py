"""The search outbox: filled by a DB trigger in the insert's transaction, drained safely.

Also home of the small builders the other search/media tests share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from channels.base import Address, AddressKind, Attachment, ChannelKind, Inbound, IngestReceipt
from hub.actions.batch_writer import writer_for
from hub.actions.ingest import Ingestor
from hub.actions.log import append
from hub.actions.qa import FormContent, do_create_form, do_evaluate
from hub.auth.sessions import Principal
from hub.db.engine import SessionFactory
from hub.db.models import Conversation, Interaction, SearchOutbox, User
from hub.domain import ActorType, Direction, InteractionKind, Role
from hub.search.indexer import Indexer
from recorder.media import MediaStore
from recorder.search import (
    IndexUnavailableError,
    SearchDoc,
    SearchFilters,
    SearchQuery,
    TantivyIndex,
)
from tests.conftest import Db
from tests.hub.helpers import MemoryMedia, RecordingBus
from tests.hub.server import seed_users


def make_ingestor(sessions: SessionFactory, media: MediaStore | None = None) -> Ingestor:
    if media is None:
        return Ingestor(sessions, RecordingBus(), MemoryMedia().put)
    store = media

    async def put(data: bytes, content_type: str) -> str:
        return (await store.put(data, content_type)).key

    return Ingestor(sessions, RecordingBus(), put)


async def ingest(
    ingestor: Ingestor,
    text: str,
    *,
    sender: str = "+15550000001",
    ext: str,
    channel: ChannelKind = ChannelKind.SMS,
    subject: str | None = None,
    attachments: Iterable[Attachment] = (),
) -> IngestReceipt:
    if channel is ChannelKind.EMAIL and "@" not in sender:
        sender = f"{sender.strip('+')}@example.com"
    kind = AddressKind.EMAIL if channel is ChannelKind.EMAIL else AddressKind.PHONE
    return await ingestor(
        Inbound(
            channel=channel,
            channel_id="main",
            external_id=ext,
            sender=Address(kind, sender),
            text=text,
            subject=subject,
            attachments=tuple(attachments),
            received_at=datetime.now(UTC),
        )
    )


async def outbox_rows(sessions: SessionFactory) -> list[tuple[str, str]]:
    async with sessions() as s:
        rows = await s.execute(
            select(SearchOutbox.interaction_id, SearchOutbox.op).order_by(SearchOutbox.id)
        )
        return [(i, op) for i, op in rows]


async def ids_for(index: TantivyIndex, text: str) -> set[str]:
    return {h.id for h in (await index.search(SearchQuery(text=text, limit=100))).hits}


async def test_every_interaction_insert_queues_an_outbox_row(db: Db) -> None:
    ingestor = make_ingestor(db.sessions)
    r1 = await ingest(ingestor, "first message", ext="m1")
    r2 = await ingest(ingestor, "second message", ext="m2")
    async with db.sessions() as s:
        all_ids = set((await s.execute(select(Interaction.id))).scalars())
    rows = await outbox_rows(db.sessions)
    assert {i for i, _ in rows} == all_ids
    assert {r1.interaction_id, r2.interaction_id} <= all_ids
    assert {op for _, op in rows} == {"upsert"}


async def test_rolled_back_insert_leaves_no_outbox_row(db: Db) -> None:
    r = await ingest(make_ingestor(db.sessions), "hello", ext="m1")
    before = await outbox_rows(db.sessions)
    async with db.sessions() as s:
        await s.begin()
        await append(
            s,
            r.conversation_id,
            kind=InteractionKind.NOTE,
            direction=Direction.INTERNAL,
            channel="sms",
            actor_type=ActorType.SYSTEM,
            text="never committed",
        )
        await s.flush()
        inside = (await s.execute(select(func.count()).select_from(SearchOutbox))).scalar_one()
        assert inside == len(before) + 1  # the trigger ran inside the transaction
        await s.rollback()
    assert await outbox_rows(db.sessions) == before


async def test_outbox_survives_a_stopped_indexer_and_drains_on_start(db: Db) -> None:
    ingestor = make_ingestor(db.sessions)
    receipts = [await ingest(ingestor, f"parcel tracking {n}", ext=f"m{n}") for n in range(3)]
    pending = await outbox_rows(db.sessions)  # no indexer ran: everything is still queued
    assert {r.interaction_id for r in receipts} <= {i for i, _ in pending}
    index = TantivyIndex.open(None)
    try:
        drained = await Indexer(db.sessions, index).drain_all()
        assert drained == len(pending)
        assert await ids_for(index, "parcel") == {r.interaction_id for r in receipts}
        assert await outbox_rows(db.sessions) == []
    finally:
        await index.close()


class FlakyIndex:
    """A real tantivy index whose first commit fails, as a crash before the commit would."""

    def __init__(self) -> None:
        self.inner = TantivyIndex.open(None)
        self.failures = 1

    async def upsert(self, docs: Iterable[SearchDoc]) -> None:
        await self.inner.upsert(docs)

    async def delete(self, ids: Iterable[str]) -> None:
        await self.inner.delete(ids)

    async def delete_by_contact(self, contact_id: str) -> None:
        await self.inner.delete_by_contact(contact_id)

    async def commit(self) -> None:
        if self.failures:
            self.failures -= 1
            raise IndexUnavailableError("simulated crash before commit")
        await self.inner.commit()


async def test_failed_index_commit_keeps_the_outbox_for_replay(db: Db) -> None:
    r = await ingest(make_ingestor(db.sessions), "invoice overdue", ext="m1")
    flaky = FlakyIndex()
    indexer = Indexer(db.sessions, flaky)  # type: ignore[arg-type]
    with pytest.raises(IndexUnavailableError):
        await indexer.drain_once()
    assert r.interaction_id in {i for i, _ in await outbox_rows(db.sessions)}
    assert await indexer.drain_all() >= 1  # the replay
    assert await ids_for(flaky.inner, "invoice") == {r.interaction_id}
    assert await outbox_rows(db.sessions) == []
    await flaky.inner.close()


async def test_deleted_interaction_is_removed_and_assignment_relabels(db: Db) -> None:
    ingestor = make_ingestor(db.sessions)
    keep = await ingest(ingestor, "router broken", ext="m1")
    gone = await ingest(ingestor, "router replaced", ext="m2", sender="+15550000002")
    index = TantivyIndex.open(None)
    indexer = Indexer(db.sessions, index)
    await indexer.drain_all()
    assert await ids_for(index, "router") == {keep.interaction_id, gone.interaction_id}
    async with db.sessions() as s, s.begin():
        await s.execute(delete(Interaction).where(Interaction.id == gone.interaction_id))
        s.add(SearchOutbox(interaction_id=gone.interaction_id, op="delete"))
        await s.execute(
            update(Conversation)
            .where(Conversation.id == keep.conversation_id)
            .values(assignee_id=None, queue_id=None)
        )
        await append(
            s,
            keep.conversation_id,
            kind=InteractionKind.ASSIGNMENT,
            direction=Direction.INTERNAL,
            channel="sms",
            actor_type=ActorType.SYSTEM,
        )
    await indexer.drain_all()
    hits = (await index.search(SearchQuery(text="router"))).hits
    assert [h.id for h in hits] == [keep.interaction_id]
    await index.close()


async def test_a_qa_score_reaches_every_doc_of_the_conversation_after_a_crash(db: Db) -> None:
    """The evaluation and its log note commit together; the note's outbox row re-labels the
    whole conversation with the score, and a crash before the index commit replays it."""
    agents = await seed_users(db)
    ingestor = make_ingestor(db.sessions)
    first = await ingest(ingestor, "dishwasher leaking", ext="m1")
    second = await ingest(ingestor, "dishwasher still leaking", ext="m2")
    assert first.conversation_id == second.conversation_id
    flaky = FlakyIndex()
    indexer = Indexer(db.sessions, flaky)  # type: ignore[arg-type]
    flaky.failures = 0
    await indexer.drain_all()
    async with db.sessions() as s, s.begin():
        user = (await s.execute(select(User).where(User.email == "qa@t.test"))).scalar_one()
        who = Principal(user.id, user.email, user.name, Role.QA, None, "test")
        content = FormContent.model_validate(
            {"name": "Q", "criteria": [{"key": "ok", "label": "OK", "weight": 1, "max": 4}]}
        )
        form, _ = await do_create_form(s, who, content)
        await do_evaluate(
            s,
            who,
            form_id=form.id,
            conversation_id=first.conversation_id,
            interaction_id=None,
            agent_id=agents["agent@t.test"],
            answers={"ok": 3},
            comment="",
        )
    flaky.failures = 1  # the process dies between the index writes and their commit
    with pytest.raises(IndexUnavailableError):
        await indexer.drain_once()
    assert await flaky.inner.count() == 2
    await indexer.drain_all()  # restart: the outbox still has the note
    scored = await flaky.inner.search(
        SearchQuery(filters=SearchFilters(qa_min=75.0, qa_max=75.0), limit=10)
    )
    by_kind = sorted((h.doc.kind, h.doc.qa_score) for h in scored.hits)
    assert by_kind == [("note", 75.0), ("sms", 75.0), ("sms", 75.0)]
    assert {first.interaction_id, second.interaction_id} <= {h.id for h in scored.hits}
    await flaky.inner.close()

R = TypeVar("R")


class CountingWriter:
    """The hub's real writer for this database, counting the units it runs."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.inner = writer_for(sessions)
        self.units = 0

    async def run(self, work: Callable[[Connection], R], /) -> R:
        self.units += 1
        return await self.inner.run(work)


async def test_sqlite_outbox_deletes_run_on_the_shared_writer(db: Db) -> None:
    """On SQLite the drained rows are deleted as a unit on the writer the hub shares (not held
    across the async pool's hops); PostgreSQL deletes them in the transaction that locked them."""
    ingestor = make_ingestor(db.sessions)
    receipts = [await ingest(ingestor, f"invoice copy {n}", ext=f"w{n}") for n in range(3)]
    writer = CountingWriter(db.sessions)
    index = TantivyIndex.open(None)
    try:
        drained = await Indexer(db.sessions, index, writer=writer).drain_all()
        assert drained >= len(receipts)
        assert await ids_for(index, "invoice") == {r.interaction_id for r in receipts}
        assert await outbox_rows(db.sessions) == []
    finally:
        await index.close()
    assert writer.units == (0 if db.engine.dialect.name == "postgresql" else 1)
