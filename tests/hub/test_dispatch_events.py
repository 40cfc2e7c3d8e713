"""Routing from ``conversation.queued`` payloads (hub.actions.queued, hub.dispatch.changes):
every publisher's facts equal the committed row's, the dispatcher does not read the row back
when they are complete (and does when they are missing), and an event the DB has overtaken
never becomes an offer. Through the real hub on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select, update

from channels.base import ChannelKind
from hub.db.models import Conversation, Offer, Queue
from hub.dispatch.dispatcher import Dispatcher
from hub.dispatch.early import EarlyOffer, early_listeners
from hub.dispatch.mapping import WorkFacts
from hub.domain import Role
from hub.events import Event
from routing import events as rev
from routing.model import Work
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_dispatch import AgentSocket, ready, setup_center

ROW_READ = "FROM conversations WHERE conversations.id IN"  # the change feed's read-back


@contextmanager
def row_reads() -> Iterator[list[str]]:
    seen: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if ROW_READ in " ".join(statement.split()):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", spy)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", spy)


class Queued:
    """Bus listener keeping each ``conversation.queued`` event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, ev: Event) -> None:
        if ev.name == "conversation.queued":
            self.events.append(ev)

    def last(self, conv_id: str) -> Event:
        return [e for e in self.events if e.data["id"] == conv_id][-1]


def dispatcher_of(hub: RunningHub) -> Dispatcher:
    found = hub.services.extras["dispatcher"]
    assert isinstance(found, Dispatcher)
    return found


async def sms(hub: RunningHub, sender: str, ext: str) -> str:
    receipt = await hub.services.ingestor(
        inbound(ChannelKind.SMS, sender, ext, "hi", channel_id="+14155550100")
    )
    return receipt.conversation_id


async def row_facts(db: Db, conv_id: str) -> WorkFacts:
    async with db.sessions() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        return WorkFacts.of_row(conv)


async def test_every_publisher_carries_the_facts_of_the_committed_row(db: Db) -> None:
    """Ingest (one by one and as a batch), reopen and a transfer to a queue: the event's facts
    are the row's (no agent is ready, so the rows stay queued)."""
    await setup_center(db)
    async with running_hub(db) as hub:
        queued = Queued()
        hub.services.bus.subscribe(queued)
        first = await sms(hub, "+14155550201", "f-1")
        burst = await asyncio.gather(*(sms(hub, f"+1415555030{n}", f"b-{n}") for n in range(4)))
        async with hub.client(Role.SUPERVISOR) as c:
            assert (await c.post(f"/api/conversations/{first}/resolve")).status_code == 200
            assert (await c.post(f"/api/conversations/{first}/reopen")).status_code == 200
            async with db.sessions() as s:
                queue_id = (await s.execute(select(Queue.id))).scalar_one()
            r = await c.post(f"/api/conversations/{burst[0]}/transfer",
                             json={"queue_id": queue_id, "note": "n"})  # fmt: skip
            assert r.status_code == 200, r.text
            # one by one (an item with thread references), then reopened by a reply to it
            threaded = (await hub.services.ingestor(inbound(
                ChannelKind.SMS, "+14155550205", "t-1", "hi", channel_id="+14155550100",
                thread_refs=("unknown",),
            ))).conversation_id  # fmt: skip
            facts = WorkFacts.of_event(threaded, queued.last(threaded).data)
            assert facts is not None and facts == await row_facts(db, threaded)
            assert (await c.post(f"/api/conversations/{threaded}/resolve")).status_code == 200
            reply = await hub.services.ingestor(inbound(
                ChannelKind.SMS, "+14155550205", "t-2", "again", channel_id="+14155550100",
                thread_refs=("t-1",),
            ))  # fmt: skip
            assert reply.conversation_id == threaded
        for conv_id in [first, *burst, threaded]:
            facts = WorkFacts.of_event(conv_id, queued.last(conv_id).data)
            assert facts == await row_facts(db, conv_id)
            assert facts is not None and facts.status == "queued"
        # ingests, the API's reopen and transfer, the one-by-one ingest and its reopen
        assert len(queued.events) == 1 + 4 + 1 + 1 + 2


async def test_complete_facts_route_without_reading_the_row(db: Db) -> None:
    """The same committed event handled twice: with its facts the dispatcher reads no
    conversation row; without them (an older publisher) it reads it; the router holds the
    same work either way."""
    await setup_center(db)
    async with running_hub(db) as hub:
        queued = Queued()
        hub.services.bus.subscribe(queued)
        conv_id = await sms(hub, "+14155550202", "n-1")
        dispatcher = dispatcher_of(hub)
        fed: list[Work] = []
        decide = dispatcher._decide

        def spy(events: list[rev.Event]) -> list[Any]:
            fed.extend(e.work for e in events if isinstance(e, rev.WorkQueued))
            return decide(events)

        dispatcher._decide = spy  # type: ignore[method-assign]
        full = queued.last(conv_id)
        with row_reads() as reads:
            await dispatcher.on_event(full)
        assert reads == []
        from_event = dispatcher.router.work(conv_id)
        with row_reads() as reads:
            await dispatcher.on_event(Event(full.name, {"id": conv_id}, rooms=full.rooms))
        assert len(reads) == 1
        assert dispatcher.router.work(conv_id) == from_event is not None
        assert from_event.status == "waiting"
        assert len(fed) == 2 and fed[0] == fed[1]
        assert fed[0].work_id == conv_id
        assert fed[0].arrival == (await row_facts(db, conv_id)).arrival


async def test_an_event_the_db_has_overtaken_never_becomes_an_offer(db: Db) -> None:
    """The conversation was resolved after its queued event: routed from the event, the offer
    is refused by the executor (the row is not waiting), nothing is written, the early ring is
    told it was not saved, and the router, rebuilt from the DB, no longer holds the work and
    still offers new work."""
    await setup_center(db)
    async with running_hub(db) as hub:
        queued = Queued()
        hub.services.bus.subscribe(queued)
        heard: list[EarlyOffer] = []
        early_listeners(hub.services.extras).append(heard.append)
        dispatcher = dispatcher_of(hub)
        stale_id = await sms(hub, "+14155550203", "s-1")
        stale = queued.last(stale_id)
        async with db.sessions() as s, s.begin():  # resolved, and no event for the router yet
            await s.execute(
                update(Conversation).where(Conversation.id == stale_id).values(status="resolved")
            )
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as sock:
            await ready(hub, tok)  # the router still holds the work and offers it: refused
            assert dispatcher.router.work(stale_id) is None
            await dispatcher.on_event(stale)  # the stale event itself: refused as well
            assert dispatcher.router.work(stale_id) is None
            fresh_id = await sms(hub, "+14155550204", "s-2")
            offer = await sock.next("offer")
        assert offer["conversation_id"] == fresh_id
        saved = [(o.conversation_id, await asyncio.wait_for(o.saved, 5)) for o in heard]
        assert (stale_id, False) in saved and saved[-1] == (fresh_id, True)
        assert all(ok is False for cid, ok in saved if cid == stale_id)
        async with db.sessions() as s:
            offers = [o.conversation_id for o in (await s.execute(select(Offer))).scalars()]
            conv = await s.get(Conversation, stale_id)
        assert offers == [fresh_id]
        assert conv is not None and conv.status == "resolved"
