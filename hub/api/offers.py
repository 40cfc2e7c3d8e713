"""Offers: the router's proposals to an agent, accepted or declined before they expire."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.api.framework import AGENTS_UP, Api, Context
from hub.api.schemas import OkOut
from hub.db.base import utcnow
from hub.db.models import Conversation, Offer
from hub.dispatch import Dispatcher
from hub.domain import OfferStatus
from hub.errors import ApiError

api = Api()


def _dispatcher(ctx: Context) -> Dispatcher:
    dispatcher = ctx.services.extras.get("dispatcher")
    if not isinstance(dispatcher, Dispatcher):
        raise ApiError(
            "routing is not running in this process", code="routing_unavailable", status=503
        )
    return dispatcher


@api.route("GET", "/api/offers", roles=AGENTS_UP, tag="routing")
async def my_offers(ctx: Context) -> dict[str, Any]:
    """My live offers (normally at most one), with the conversation they offer."""
    async with ctx.services.sessions() as session:
        rows = (
            await session.execute(
                select(Offer, Conversation)
                .join(Conversation, Conversation.id == Offer.conversation_id)
                .where(
                    Offer.agent_id == ctx.user.agent_id,
                    Offer.status == OfferStatus.PENDING.value,
                    Offer.expires_at > utcnow(),
                )
            )
        ).all()
    return {
        "items": [
            {
                "offer_id": o.id,
                "conversation_id": c.id,
                "channel": c.channel,
                "queue_id": c.queue_id,
                "subject": c.subject,
                "priority": c.priority,
                "expires_at": o.expires_at.isoformat(),
                "reason": o.reason,
            }
            for o, c in rows
        ]
    }


@api.route("POST", "/api/offers/{id}/accept", roles=AGENTS_UP, response=OkOut, tag="routing")
async def accept(ctx: Context) -> OkOut:
    """Take the offered conversation (409 ``offer_not_live`` once it expired or was revoked)."""
    await _dispatcher(ctx).decide(ctx.user.agent_id, ctx.path["id"], accept=True)
    return OkOut()


@api.route("POST", "/api/offers/{id}/decline", roles=AGENTS_UP, response=OkOut, tag="routing")
async def decline(ctx: Context) -> OkOut:
    """Pass on the offer: it goes to the next eligible agent at once."""
    await _dispatcher(ctx).decide(ctx.user.agent_id, ctx.path["id"], accept=False)
    return OkOut()
