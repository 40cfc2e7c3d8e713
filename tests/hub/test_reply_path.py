"""The reply path under load, through the real hub: one conversation UPDATE per reply, its
writes re-checked in their own short transaction (a conversation resolved or a client_id stored
meanwhile), and a delivery pass that sends many replies records them together, in order,
without losing the guarantees of one at a time (status per reply, thread refs once, a resend
after a crash)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, update

from channels.base import ChannelKind, Outbound, SendResult
from hub.actions.batch_writer import writer_for
from hub.actions.conversations import ReplyDraft, commit_reply, prepare_reply
from hub.actions.reply_write import ReplyWrite
from hub.auth.sessions import Principal
from hub.db.base import utcnow
from hub.db.models import Conversation, ConversationRef, OutboundDelivery
from hub.domain import ConversationStatus, Role
from hub.errors import Conflict
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import running_hub
from tests.hub.test_api_conversations import wait_for


class GatedChannel:
    """Holds its first send until released, so the replies posted meanwhile wait for the
    delivery worker's next pass together."""

    kind = ChannelKind.SMS
    channel_id = "+15550002222"

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.gate = asyncio.Event()

    async def run(self, sink: Any) -> None:
        await asyncio.Event().wait()

    async def send(self, outbound: Outbound) -> SendResult:
        if not self.sent:
            await self.gate.wait()
        self.sent.append(outbound)
        return SendResult(external_id=f"gated-{len(self.sent)}")


async def test_a_reply_updates_its_conversation_once(db: Db) -> None:
    async with running_hub(db, channels={"sms": GatedChannel()}) as hub:
        receipt = await hub.services.ingestor(inbound(ChannelKind.SMS, "+14155550170", "r-1"))
        conv_id = receipt.conversation_id
        updates: list[str] = []

        def spy(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE CONVERSATIONS") and conv_id in str(
                params
            ):
                updates.append(statement)

        async with hub.client(Role.SUPERVISOR) as sup:
            before = (await sup.get(f"/api/conversations/{conv_id}")).json()
            event.listen(Engine, "before_cursor_execute", spy)
            try:
                r = await sup.post(f"/api/conversations/{conv_id}/messages", json={"text": "hi"})
            finally:
                event.remove(Engine, "before_cursor_execute", spy)
            assert r.status_code == 201, r.text
            after = (await sup.get(f"/api/conversations/{conv_id}")).json()
        assert len(updates) == 1 and "interaction_count" in updates[0]
        assert after["last_message_at"] > before["last_message_at"]
        assert r.json()["seq"] == 2


async def test_one_pass_sends_and_records_many_replies_in_order(db: Db) -> None:
    channel = GatedChannel()
    async with running_hub(db, channels={"sms": channel}) as hub:
        convs = [
            (
                await hub.services.ingestor(inbound(ChannelKind.SMS, f"+1415555018{i}", f"m-{i}"))
            ).conversation_id
            for i in range(4)
        ]
        async with hub.client(Role.SUPERVISOR) as sup:
            for n, conv_id in enumerate(convs):
                r = await sup.post(f"/api/conversations/{conv_id}/messages", json={"text": f"{n}"})
                assert r.status_code == 201, r.text
                if n == 0:  # the worker now holds reply 0 in send; 1..3 wait for its next pass
                    await wait_for(lambda: _claimed(db, 1))
            channel.gate.set()

            async def all_sent() -> bool:
                return len(channel.sent) == 4 and await _statuses(db) == ["sent"] * 4

            await wait_for(all_sent)
        assert [o.text for o in channel.sent] == ["0", "1", "2", "3"]
        async with db.sessions() as s:
            refs = (
                await s.execute(select(ConversationRef.ref, ConversationRef.conversation_id))
            ).all()
        assert {(ref, conv) for ref, conv in refs if ref.startswith("gated-")} == {
            (f"gated-{n + 1}", conv) for n, conv in enumerate(convs)
        }

        # a crash after the sends, before their outcome was recorded: rows go back to pending
        # and are sent again; the refs they already recorded are kept, not a failed pass
        async with db.sessions() as s, s.begin():
            await s.execute(
                update(OutboundDelivery).values(status="sending", next_attempt_at=utcnow())
            )
        delivery = hub.services.extras["delivery"]
        await delivery.recover()
        channel.sent.clear()  # the resends get the same external ids again
        channel_refs = {f"gated-{n + 1}" for n in range(4)}
        await delivery.drain()
        await wait_for(all_sent)
        async with db.sessions() as s:
            count = (
                await s.execute(
                    select(func.count())
                    .select_from(ConversationRef)
                    .where(ConversationRef.ref.in_(channel_refs))
                )
            ).scalar_one()
        assert count == 4


async def _claimed(db: Db, n: int) -> bool:
    async with db.sessions() as s:
        rows = (
            await s.execute(select(func.count()).where(OutboundDelivery.status == "sending"))
        ).scalar_one()
    return int(rows) == n


async def _statuses(db: Db) -> list[str]:
    async with db.sessions() as s:
        return list((await s.execute(select(OutboundDelivery.status))).scalars())


_AGENT = Principal(
    user_id="user_test",
    email="a@example.com",
    name="A",
    role=Role.SUPERVISOR,
    agent_id=None,
    session_id="s",
)


async def _prepared(db: Db, conv_id: str, client_id: str | None) -> tuple[Conversation, ReplyWrite]:
    """A reply whose reads and checks are done and whose writes have not run yet."""
    async with db.sessions() as s:
        conv = await s.get_one(Conversation, conv_id)
        step = await prepare_reply(s, _AGENT, conv, ReplyDraft("hi", client_id=client_id))
    assert isinstance(step, ReplyWrite)
    return conv, step


async def test_a_reply_whose_conversation_was_resolved_after_its_checks_stores_nothing(
    db: Db,
) -> None:
    async with running_hub(db, channels={"sms": GatedChannel()}) as hub:
        receipt = await hub.services.ingestor(inbound(ChannelKind.SMS, "+14155550190", "x-1"))
        conv, step = await _prepared(db, receipt.conversation_id, None)
        async with db.sessions() as s, s.begin():
            await s.execute(
                update(Conversation)
                .where(Conversation.id == conv.id)
                .values(status=ConversationStatus.RESOLVED.value)
            )
        with pytest.raises(Conflict) as refused:
            await commit_reply(writer_for(db.sessions), db.sessions, conv, step)
        assert refused.value.code == "resolved"
        async with db.sessions() as s:
            stored = (await s.execute(select(func.count()).select_from(OutboundDelivery))).scalar()
            count = (await s.get_one(Conversation, conv.id)).interaction_count
        assert stored == 0 and count == 1


async def test_two_replies_with_one_client_id_racing_past_their_checks_store_one(
    db: Db,
) -> None:
    async with running_hub(db, channels={"sms": GatedChannel()}) as hub:
        receipt = await hub.services.ingestor(inbound(ChannelKind.SMS, "+14155550191", "x-2"))
        conv, first = await _prepared(db, receipt.conversation_id, "tab-1")
        _, second = await _prepared(db, receipt.conversation_id, "tab-1")  # neither stored yet
        writer = writer_for(db.sessions)
        won, won_events = await commit_reply(writer, db.sessions, conv, first)
        lost, lost_events = await commit_reply(writer, db.sessions, conv, second)
        assert lost == won and won["seq"] == 2
        assert [e.name for e in won_events] == ["interaction.created", "delivery.queued"]
        assert lost_events == []  # published once, by the winner
        async with db.sessions() as s:
            deliveries = await s.execute(select(func.count()).select_from(OutboundDelivery))
            count = (await s.get_one(Conversation, conv.id)).interaction_count
        assert deliveries.scalar() == 1 and count == 2
