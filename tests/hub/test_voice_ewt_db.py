"""The estimated wait and the position a queued caller hears, computed from the database (both
backends): a hub process started after the answers (a restart) announces the same wait, and the
position follows the router's own order (priority, then arrival, then id)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import cast

from sqlalchemy import select

from channels.voice.call import QueueStatus
from hub.actions.log import append
from hub.channel_host import HostContext
from hub.config import apply_config, parse_config
from hub.db.base import utcnow
from hub.db.models import Contact, Conversation, Queue
from hub.domain import ActorType, Direction, InteractionKind
from hub.ids import new_id
from hub.wiring.voice_queue import HOLDTIME_SAMPLES, QueueNews
from tests.conftest import Db


async def _queues(db: Db) -> tuple[str, str]:
    cfg = "queues:\n  - name: general\n  - name: sales\n"
    await apply_config(db.sessions, parse_config(cfg), env={})
    async with db.sessions() as s:
        rows = {n: i for n, i in (await s.execute(select(Queue.name, Queue.id))).all()}
    return rows["general"], rows["sales"]


async def _answered(db: Db, queue_id: str, wait_s: float, *, ago_s: float = 0,
                    channel: str = "voice", callback: bool = False) -> None:
    """A conversation of ``queue_id`` whose assignment (as the dispatcher logs it) waited."""
    async with db.sessions() as s, s.begin():
        contact = Contact(id=new_id("contact"))
        s.add(contact)
        attrs = {"callback": {"number": "+14155550123"}} if callback else {}
        conv = Conversation(id=new_id("conversation"), contact_id=contact.id, channel=channel,
                            queue_id=queue_id, status="resolved", attributes=attrs)  # fmt: skip
        s.add(conv)
        await s.flush()
        await append(s, conv.id, kind=InteractionKind.ASSIGNMENT, direction=Direction.INTERNAL,
                     channel=channel, actor_type=ActorType.SYSTEM,
                     payload={"agent_id": "a", "wait_s": wait_s, "reason": {}},
                     at=utcnow() - timedelta(seconds=ago_s))  # fmt: skip


async def _waiting(db: Db, queue_id: str, call: str, *, queued_at: object,
                   priority: int = 0, conv_id: str | None = None) -> str:
    async with db.sessions() as s, s.begin():
        contact = Contact(id=new_id("contact"))
        s.add(contact)
        conv = Conversation(id=conv_id or new_id("conversation"), contact_id=contact.id,
                            channel="voice", queue_id=queue_id, status="queued",
                            priority=priority, queued_at=queued_at)  # fmt: skip
        s.add(conv)
        await s.flush()
        await append(s, conv.id, kind=InteractionKind.CALL, direction=Direction.INBOUND,
                     channel="voice", actor_type=ActorType.CONTACT, external_id=call,
                     payload={"sender": "phone:+14155550123"})  # fmt: skip
    return conv.id


def _news(db: Db, **kw: float) -> QueueNews:
    return QueueNews(cast(HostContext, SimpleNamespace(sessions=db.sessions)), **kw)


async def test_estimated_wait_comes_from_the_log_and_survives_a_restart(db: Db) -> None:
    general, sales = await _queues(db)
    now = utcnow()
    await _waiting(db, general, "c-me", queued_at=now)
    before = _news(db)
    assert await before.status("c-me") == QueueStatus(1, None)  # nothing answered yet

    await _answered(db, general, 100.0, ago_s=30)
    await _answered(db, general, 20.0, ago_s=20)  # app_queue's weighting: 3/4 old + 1/4 new
    await _answered(db, general, 999.0, ago_s=10, callback=True)  # not a caller's wait
    await _answered(db, general, 999.0, ago_s=10, channel="webchat")  # not a call
    await _answered(db, sales, 5.0, ago_s=5)  # another queue
    await _answered(db, general, 777.0, ago_s=2 * 86400)  # too old to count

    restarted = _news(db)  # a fresh process: no memory of the answers, only the database
    assert await restarted.status("c-me") == QueueStatus(1, 80.0)
    assert await restarted.holdtime(sales) == 5.0

    # the cache: a new answer is not read until it expires or answered() drops it
    assert await before.holdtime(general) is None  # cached before the answers were logged
    before.answered(general, 40.0)
    assert await before.holdtime(general) == 80.0
    await _answered(db, general, 40.0, ago_s=1)
    assert await restarted.holdtime(general) == 80.0  # still cached
    uncached = _news(db, cache_s=0.0)
    assert await uncached.holdtime(general) == 70.0  # 0.75 * 80 + 0.25 * 40


async def test_estimated_wait_uses_only_the_most_recent_answers(db: Db) -> None:
    general, _ = await _queues(db)
    for i in range(HOLDTIME_SAMPLES):
        await _answered(db, general, 600.0, ago_s=1000 + i)  # older
    for i in range(HOLDTIME_SAMPLES):
        await _answered(db, general, 60.0, ago_s=100 + i)  # the latest window only
    assert await _news(db).holdtime(general) == 60.0


async def test_position_is_the_routers_order_priority_arrival_then_id(db: Db) -> None:
    general, sales = await _queues(db)
    t = utcnow() - timedelta(seconds=100)
    await _waiting(db, general, "c-first", queued_at=t)
    await _waiting(db, general, "c-urgent", queued_at=t + timedelta(seconds=50), priority=3)
    await _waiting(db, general, "c-tie-a", queued_at=t + timedelta(seconds=10),
                   conv_id="conversation_0001")  # same arrival: the lower id first
    await _waiting(db, general, "c-tie-b", queued_at=t + timedelta(seconds=10),
                   conv_id="conversation_0002")
    await _waiting(db, general, "c-last", queued_at=t + timedelta(seconds=20))
    await _waiting(db, sales, "c-other-queue", queued_at=t - timedelta(seconds=50))
    news = _news(db)
    order = {c: (await news.status(c)) for c in
             ("c-urgent", "c-first", "c-tie-a", "c-tie-b", "c-last", "c-other-queue")}
    assert {c: s.position for c, s in order.items() if s} == {
        "c-urgent": 1, "c-first": 2, "c-tie-a": 3, "c-tie-b": 4, "c-last": 5,
        "c-other-queue": 1,
    }
