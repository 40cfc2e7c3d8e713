"""The hub's answers to a queued caller (position, estimated wait) and callback work, against the
database (both backends): the queries behind the announcements and the callback path."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import select

from channels.voice.call import QueueStatus
from hub.actions.log import append
from hub.channel_host import HostContext
from hub.config import apply_config, parse_config
from hub.db.base import utcnow
from hub.db.models import Contact, Conversation, Queue
from hub.domain import ActorType, Direction, InteractionKind
from hub.ids import new_id
from hub.wiring.voice_queue import OVERFLOW_DONE, QueueNews, make_callback_work
from tests.conftest import Db


async def _conv(db: Db, queue_id: str, *, call: str | None, ago_s: float, priority: int = 0,
                status: str = "queued", channel: str = "voice",
                sender: str = "phone:+14155550123") -> str:
    async with db.sessions() as s, s.begin():
        contact = Contact(id=new_id("contact"))
        s.add(contact)
        conv = Conversation(id=new_id("conversation"), contact_id=contact.id, channel=channel,
                            queue_id=queue_id, status=status, priority=priority,
                            queued_at=utcnow() - timedelta(seconds=ago_s))  # fmt: skip
        s.add(conv)
        await s.flush()
        if call is not None:
            await append(s, conv.id, kind=InteractionKind.CALL, direction=Direction.INBOUND,
                         channel=channel, actor_type=ActorType.CONTACT, external_id=call,
                         payload={"sender": sender})  # fmt: skip
    return conv.id


async def _queue(db: Db) -> str:
    await apply_config(db.sessions, parse_config("queues:\n  - name: general\n"), env={})
    async with db.sessions() as s:
        return str((await s.execute(select(Queue.id).where(Queue.name == "general"))).scalar_one())


async def test_position_counts_waiting_calls_ahead_by_priority_then_arrival(db: Db) -> None:
    q = await _queue(db)
    await _conv(db, q, call="c-old", ago_s=60)
    await _conv(db, q, call="c-vip", ago_s=5, priority=5)  # later but more urgent: ahead
    me = "c-me"
    await _conv(db, q, call=me, ago_s=30)
    await _conv(db, q, call="c-new", ago_s=10)  # behind
    await _conv(db, q, call="c-talking", ago_s=90, status="assigned")  # not waiting
    await _conv(db, q, call=None, ago_s=120, channel="webchat")  # not a call
    news = QueueNews(cast(HostContext, SimpleNamespace(sessions=db.sessions)))
    assert await news.status(me) == QueueStatus(3, None)
    assert await news.status("c-vip") == QueueStatus(1, None)
    assert await news.status("c-talking") is None  # with an agent: nothing to announce
    assert await news.status("unknown") is None
    assert await news.status("c-new") == QueueStatus(4, None)  # the wait: test_voice_ewt_db.py


async def test_callback_work_goes_back_to_the_queue_with_the_callers_number(db: Db) -> None:
    q = await _queue(db)
    conv_id = await _conv(db, q, call="c1", ago_s=400, status="pending")
    anon_id = await _conv(db, q, call="c2", ago_s=10, sender="phone:anonymous")
    async with db.sessions() as s, s.begin():
        conv = await s.get(Conversation, conv_id)
        anon = await s.get(Conversation, anon_id)
        assert conv is not None and anon is not None
        conv.attributes = {"left_queue": "voicemail"}
        events = await make_callback_work(s, conv, reason="voicemail", end={"wait_s": 400.0})
        quiet = await make_callback_work(s, anon, reason="callback", end={})
    names = [e.name for e in events]
    assert names == ["interaction.created", "conversation.queued"]
    assert [e.name for e in quiet] == ["interaction.created"]  # nobody to call back
    async with db.sessions() as s:
        conv = await s.get(Conversation, conv_id)
        anon = await s.get(Conversation, anon_id)
    assert conv is not None and anon is not None
    cb: dict[str, Any] = conv.attributes["callback"]
    assert conv.status == "queued" and cb["number"] == "+14155550123"
    assert cb["reason"] == "voicemail" and cb["wait_s"] == 400.0
    assert "left_queue" not in conv.attributes
    assert conv.attributes["overflow_done"] == OVERFLOW_DONE  # no voicemail again while waiting
    assert conv.queued_at is not None and conv.queued_at > utcnow() - timedelta(seconds=60)
    assert anon.status == "pending" and anon.attributes["callback"]["number"] is None
