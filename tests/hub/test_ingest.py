"""Ingest: idempotency, contact resolution across channels, threading, routing rules."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Attachment, ChannelKind
from hub.actions import routing_catalog
from hub.actions.ingest import Ingestor
from hub.db.models import (
    ChannelInstance,
    Contact,
    ContactAddress,
    Conversation,
    Interaction,
    Queue,
    RoutingRule,
)
from hub.domain import ConversationStatus
from hub.ids import new_id
from tests.conftest import Db
from tests.hub.helpers import MemoryMedia, RecordingBus, inbound


def make_ingestor(db: Db, **kw: bool) -> tuple[Ingestor, RecordingBus, MemoryMedia]:
    bus, media = RecordingBus(), MemoryMedia()
    return Ingestor(db.sessions, bus, media.put, **kw), bus, media


async def count(db: Db, model: type) -> int:
    async with db.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_same_message_twice_is_stored_once(db: Db) -> None:
    ingest, bus, _ = make_ingestor(db)
    msg = inbound(ChannelKind.EMAIL, "ann@example.com", "<m1@example.com>")
    first = await ingest(msg)
    second = await ingest(msg)
    assert first.created and not second.created
    assert (first.interaction_id, first.conversation_id) == (
        second.interaction_id,
        second.conversation_id,
    )
    assert await count(db, Interaction) == 1
    assert bus.names().count("conversation.queued") == 1


async def test_concurrent_duplicates_store_once(db: Db) -> None:
    ingest, _, _ = make_ingestor(db)
    msg = inbound(ChannelKind.SMS, "+14155550100", "sms-1")
    receipts = await asyncio.gather(*(ingest(msg) for _ in range(6)))
    assert sum(r.created for r in receipts) == 1
    assert len({r.interaction_id for r in receipts}) == 1
    assert await count(db, Interaction) == 1
    assert await count(db, Contact) == 1


async def test_same_number_over_voice_sms_fax_is_one_contact(db: Db) -> None:
    ingest, _, _ = make_ingestor(db)
    a = await ingest(inbound(ChannelKind.VOICE, "+33612345678", "call-1"))
    b = await ingest(inbound(ChannelKind.SMS, "+33612345678", "sms-1"))
    c = await ingest(inbound(ChannelKind.FAX, "+33612345678", "fax-1"))
    assert a.contact_id == b.contact_id == c.contact_id
    # but each channel gets its own conversation
    assert len({a.conversation_id, b.conversation_id, c.conversation_id}) == 3
    assert await count(db, ContactAddress) == 1


async def test_open_conversation_on_channel_is_continued(db: Db) -> None:
    ingest, _, _ = make_ingestor(db)
    a = await ingest(inbound(ChannelKind.SMS, "+14155550100", "s1", "hi"))
    b = await ingest(inbound(ChannelKind.SMS, "+14155550100", "s2", "anyone?"))
    assert a.conversation_id == b.conversation_id
    async with db.sessions() as s:
        seqs = (
            (
                await s.execute(
                    select(Interaction.seq)
                    .where(Interaction.conversation_id == a.conversation_id)
                    .order_by(Interaction.seq)
                )
            )
            .scalars()
            .all()
        )
    assert list(seqs) == [1, 2]


async def test_explicit_reference_wins_over_open_conversation(db: Db) -> None:
    ingest, _, _ = make_ingestor(db)
    first = await ingest(inbound(ChannelKind.EMAIL, "bob@example.com", "<a@x>", subject="Order"))
    async with db.sessions() as s, s.begin():
        conv = await s.get(Conversation, first.conversation_id)
        assert conv is not None
        conv.status = ConversationStatus.RESOLVED.value
    other = await ingest(inbound(ChannelKind.EMAIL, "bob@example.com", "<b@x>", subject="New"))
    assert other.conversation_id != first.conversation_id  # resolved case not continued
    reply = await ingest(
        inbound(ChannelKind.EMAIL, "bob@example.com", "<c@x>", thread_refs=("<a@x>",))
    )
    assert reply.conversation_id == first.conversation_id  # the reference reopens the old case
    async with db.sessions() as s:
        conv = await s.get(Conversation, first.conversation_id)
        assert conv is not None and conv.status == ConversationStatus.QUEUED.value


async def test_reference_to_resolved_case_starts_new_one_when_reopen_disabled(db: Db) -> None:
    ingest, _, _ = make_ingestor(db, reopen_resolved=False)
    first = await ingest(inbound(ChannelKind.EMAIL, "eve@example.com", "<a@y>"))
    async with db.sessions() as s, s.begin():
        conv = await s.get(Conversation, first.conversation_id)
        assert conv is not None
        conv.status = ConversationStatus.RESOLVED.value
    reply = await ingest(
        inbound(ChannelKind.EMAIL, "eve@example.com", "<b@y>", thread_refs=("<a@y>",))
    )
    assert reply.conversation_id != first.conversation_id


async def test_auto_generated_mail_is_recorded_but_not_queued(db: Db) -> None:
    ingest, bus, _ = make_ingestor(db)
    r = await ingest(
        inbound(ChannelKind.EMAIL, "mailer-daemon@example.com", "<dsn@x>", auto_generated=True)
    )
    assert r.created
    async with db.sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        assert conv is not None and conv.status == ConversationStatus.RESOLVED.value
    assert "conversation.queued" not in bus.names()
    assert "interaction.created" in bus.names()


async def test_routing_rules_pick_queue_and_raise_priority(db: Db) -> None:
    async with db.sessions() as s, s.begin():
        general, billing = (
            Queue(id=new_id("queue"), name="general"),
            Queue(id=new_id("queue"), name="billing"),
        )
        s.add_all([general, billing])
        await s.flush()
        s.add(
            ChannelInstance(
                id=new_id("channel"),
                kind="email",
                name="support",
                address="support@acme.test",
                queue_id=general.id,
            )
        )
        s.add(
            RoutingRule(
                id=new_id("rule"),
                name="vip",
                position=0,
                conditions={"contact": {"vip": True}},
                priority=10,
                stop=False,
            )
        )
        s.add(
            RoutingRule(
                id=new_id("rule"),
                name="refunds",
                position=1,
                conditions={"channel": "email", "keywords": ["refund", "invoice"]},
                queue_id=billing.id,
            )
        )
    ingest, _, _ = make_ingestor(db)
    plain = await ingest(
        inbound(
            ChannelKind.EMAIL,
            "a@example.com",
            "<1@x>",
            "Where is my parcel?",
            channel_id="support@acme.test",
        )
    )
    refund = await ingest(
        inbound(
            ChannelKind.EMAIL,
            "b@example.com",
            "<2@x>",
            "I want a REFUND now",
            channel_id="support@acme.test",
        )
    )
    first_sms = await ingest(inbound(ChannelKind.SMS, "+14155550199", "x", "refund please"))
    async with db.sessions() as s, s.begin():
        contact = await s.get(Contact, first_sms.contact_id)
        conv = await s.get(Conversation, first_sms.conversation_id)
        assert contact is not None and conv is not None
        contact.attributes = {"vip": True}
        conv.status = ConversationStatus.RESOLVED.value
    vip_sms = await ingest(inbound(ChannelKind.SMS, "+14155550199", "y", "still waiting"))
    async with db.sessions() as s:
        c_plain = await s.get(Conversation, plain.conversation_id)
        c_refund = await s.get(Conversation, refund.conversation_id)
        c_first = await s.get(Conversation, first_sms.conversation_id)
        c_vip = await s.get(Conversation, vip_sms.conversation_id)
    assert c_plain and c_refund and c_first and c_vip
    assert (c_plain.queue_id, c_plain.priority) == (general.id, 0)
    assert (c_refund.queue_id, c_refund.priority) == (billing.id, 0)
    assert c_refund.attributes["rules"] == ["refunds"]
    # SMS: the keyword rule is email-only and the SMS channel has no queue of its own
    assert (c_first.queue_id, c_first.priority) == (None, 0)
    assert c_vip.id != c_first.id
    assert c_vip.priority == 10 and c_vip.attributes["rules"] == ["vip"]


async def test_attachments_go_to_media_store(db: Db) -> None:
    ingest, _, media = make_ingestor(db)
    att = Attachment("scan.pdf", "application/pdf", b"%PDF-1.4 fake pdf bytes")
    r = await ingest(inbound(ChannelKind.EMAIL, "c@example.com", "<att@x>", attachments=(att,)))
    async with db.sessions() as s:
        row = await s.get(Interaction, r.interaction_id)
        assert row is not None
        await s.refresh(row, ["attachments"])
        [rec] = row.attachments
    assert media.blobs[rec.sha256] == att.data
    assert (rec.filename, rec.size) == ("scan.pdf", len(att.data))


async def _rule_to_new_queue(db: Db, name: str, conditions: dict[str, object]) -> str:
    """A new queue and a first-position rule sending matching items to it (its id)."""
    async with db.sessions() as s, s.begin():
        queue = Queue(id=new_id("queue"), name=f"{name}-queue")
        s.add(queue)
        await s.flush()
        s.add(
            RoutingRule(
                id=new_id("rule"), name=name, position=0, conditions=conditions, queue_id=queue.id
            )
        )
    return queue.id


async def test_catalog_refresher_picks_up_new_rules_off_the_ingest_path(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the hub's refresher running, ingest never loads the catalog itself, and a rule
    added by another process (``contacthub apply``) routes the next message once reloaded."""
    monkeypatch.setattr(routing_catalog, "CATALOG_TTL_S", 0.05)
    ingest, _, _ = make_ingestor(db)
    loads: list[str] = []
    real_load = routing_catalog.load_catalog

    async def counted(session: AsyncSession) -> object:
        catalog = await real_load(session)
        task = asyncio.current_task()
        loads.append(task.get_name() if task else "?")  # once loaded, by whom
        return catalog

    monkeypatch.setattr(routing_catalog, "load_catalog", counted)
    refresher = asyncio.create_task(ingest.refresh_catalog(), name="refresher")
    try:
        while not loads:
            await asyncio.sleep(0.01)
        before = await ingest(inbound(ChannelKind.SMS, "+14155550111", "a", "refund please"))
        billing = await _rule_to_new_queue(db, "refunds", {"keywords": ["refund"]})
        seen = len(loads)
        while len(loads) < seen + 2:  # a reload that started after the commit
            await asyncio.sleep(0.01)
        after = await ingest(inbound(ChannelKind.SMS, "+14155550122", "b", "refund please"))
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
    async with db.sessions() as s:
        c_before = await s.get(Conversation, before.conversation_id)
        c_after = await s.get(Conversation, after.conversation_id)
    assert c_before is not None and c_after is not None
    assert c_before.queue_id is None
    assert c_after.queue_id == billing
    assert set(loads) == {"refresher"}  # every load ran in the refresher, none in an ingest


async def test_stuck_refresher_does_not_leave_old_rules_in_use(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the refresher stops reloading, ingest reloads by itself once the copy is too old."""
    monkeypatch.setattr(routing_catalog, "CATALOG_TTL_S", 0.02)
    monkeypatch.setattr(routing_catalog, "CATALOG_STALE_S", 0.05)
    ingest, _, _ = make_ingestor(db)
    await ingest(inbound(ChannelKind.SMS, "+14155550133", "a", "hello"))  # loads a catalog
    ingest._catalogs._refreshed = True  # as if a refresher ran but is stuck
    billing = await _rule_to_new_queue(db, "all", {"channel": "sms"})
    await asyncio.sleep(0.08)
    late = await ingest(inbound(ChannelKind.SMS, "+14155550144", "b", "hello"))
    async with db.sessions() as s:
        conv = await s.get(Conversation, late.conversation_id)
    assert conv is not None and conv.queue_id == billing
