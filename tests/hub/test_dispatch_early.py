"""Early offers (hub.dispatch.early): listeners hear the router's offer before its write
commits, then whether it was saved. Through the real hub on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from channels.base import ChannelKind
from hub.db.models import Conversation, Offer
from hub.dispatch import dispatcher as dispatcher_module
from hub.dispatch.early import EarlyOffer, early_listeners
from hub.dispatch.executor import execute
from hub.domain import Role
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import running_hub
from tests.hub.test_dispatch import AgentSocket, ready, setup_center


class Heard:
    """A listener recording each early offer and whether it was announced before settling."""

    def __init__(self) -> None:
        self.offers: list[EarlyOffer] = []
        self.settled_when_heard: list[bool] = []

    def __call__(self, offer: EarlyOffer) -> None:
        self.offers.append(offer)
        self.settled_when_heard.append(offer.saved.done())


async def test_offer_is_announced_before_its_write_then_reported_saved(db: Db) -> None:
    await setup_center(db)
    async with running_hub(db) as hub:
        heard = Heard()
        early_listeners(hub.services.extras).append(heard)
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as sock:
            await ready(hub, tok)
            receipt = await hub.services.ingestor(
                inbound(ChannelKind.SMS, "+14155550111", "e-1", "hi", channel_id="+14155550100")
            )
            offer = await sock.next("offer")
        (early,) = heard.offers
        assert heard.settled_when_heard == [False]  # heard before the transaction ended
        assert await asyncio.wait_for(early.saved, 5) is True
        assert (early.offer_id, early.conversation_id) == (offer["offer_id"],
                                                           receipt.conversation_id)  # fmt: skip
        assert early.agent_id == hub.agent_ids["agent@t.test"]
        assert early.voice_endpoint is None  # this agent has no phone
        async with db.sessions() as s:
            row = await s.get(Offer, early.offer_id)
            assert row is not None and row.status == "pending"


async def test_offer_whose_write_failed_is_reported_unsaved_and_offered_again(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction holding the offer fails after the listener heard it: the listener learns
    it was never saved, the router is rebuilt from the database and the work is offered anew
    (a new offer id), so nothing is lost and the unsaved offer left no row."""
    await setup_center(db)
    real = execute
    failures = [RuntimeError("disk full")]

    async def flaky(session: object, commands: list[object]) -> object:
        result = await real(session, commands)  # type: ignore[arg-type]
        if failures:
            raise failures.pop()
        return result

    monkeypatch.setattr(dispatcher_module, "execute", flaky)
    async with running_hub(db) as hub:
        heard = Heard()
        early_listeners(hub.services.extras).append(heard)
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as sock:
            await ready(hub, tok)
            receipt = await hub.services.ingestor(
                inbound(ChannelKind.SMS, "+14155550112", "e-2", "hi", channel_id="+14155550100")
            )
            offer = await sock.next("offer")
        first, second = heard.offers
        assert await asyncio.wait_for(first.saved, 5) is False
        assert await asyncio.wait_for(second.saved, 5) is True
        assert first.offer_id != second.offer_id == offer["offer_id"]
        assert first.conversation_id == second.conversation_id == receipt.conversation_id
        async with db.sessions() as s:
            ids = [o.id for o in (await s.execute(select(Offer))).scalars()]
            conv = await s.get(Conversation, receipt.conversation_id)
        assert ids == [second.offer_id]
        assert conv is not None and conv.status == "offered"
