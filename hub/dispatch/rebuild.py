"""The router's state read back from the DB (the dispatcher's start, and after any failure).

Order matters and follows the DB: queues, logged-in agents, open assignments, live offers (kept
with their original expiry, not re-sent), then queued work in arrival order. Offers that expired
while the hub was down are marked expired in the same transaction and their work is queued
again, so no contact is lost or offered twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.base import utcnow
from hub.db.models import Agent, Conversation, Offer, Queue
from hub.dispatch.changes import queued_work
from hub.dispatch.mapping import WorkFacts, agent_profile, queue_configs
from hub.domain import ConversationStatus, OfferStatus, Presence
from routing import events as rev
from routing.model import AgentProfile, QueueConfig, Work
from routing.model import Presence as RPresence


@dataclass(slots=True)
class RouterState:
    queues: dict[str, Queue] = field(default_factory=dict)
    queue_cfgs: dict[str, QueueConfig] = field(default_factory=dict)
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    endpoints: dict[str, str | None] = field(default_factory=dict)  # agent -> voice endpoint
    feed: list[rev.Event] = field(default_factory=list)  # for a fresh router, in this order


async def read_state(session: AsyncSession, now: float) -> RouterState:
    """Read everything routing needs; call inside a transaction (it expires stale offers)."""
    st = RouterState()
    feed = st.feed
    queues = list((await session.execute(select(Queue))).scalars())
    st.queues = {q.id: q for q in queues}
    st.queue_cfgs = {c.queue_id: c for c in queue_configs(queues)}
    feed += [rev.QueueConfigured(c, now) for c in st.queue_cfgs.values()]

    def work(conv: Conversation) -> Work:
        return WorkFacts.of_row(conv).work(st.queues[conv.queue_id or ""].priority)

    online = select(Agent).where(Agent.presence != Presence.OFFLINE.value)
    for a in (await session.execute(online)).scalars():
        profile = agent_profile(a)
        st.profiles[a.id] = profile
        st.endpoints[a.id] = a.voice_endpoint
        presence = (
            RPresence.READY if a.presence == Presence.WRAP_UP.value else RPresence(a.presence)
        )
        feed.append(rev.AgentLoggedIn(profile, now, presence, a.presence_reason or ""))
    in_router = set(st.profiles)
    assigned = select(Conversation).where(Conversation.status == ConversationStatus.ASSIGNED.value)
    for conv in (await session.execute(assigned)).scalars():
        if conv.assignee_id in in_router and conv.queue_id in st.queues:
            feed.append(rev.AssignmentRestored(work(conv), conv.assignee_id or "", now))
    restored: set[str] = set()
    pending = select(Offer).where(Offer.status == OfferStatus.PENDING.value)
    for offer in (await session.execute(pending)).scalars():
        oconv = await session.get(Conversation, offer.conversation_id)
        live = (
            offer.expires_at.timestamp() > now
            and offer.agent_id in in_router
            and oconv is not None
            and oconv.queue_id in st.queues
            and oconv.id not in restored
        )
        if live and oconv is not None:
            expires = offer.expires_at.timestamp()
            feed.append(rev.OfferRestored(offer.id, work(oconv), offer.agent_id, expires, now))
            restored.add(oconv.id)
        else:
            offer.status = OfferStatus.EXPIRED.value
            offer.decided_at = utcnow()
            if oconv is not None and oconv.status == ConversationStatus.OFFERED.value:
                oconv.status = ConversationStatus.QUEUED.value
    waiting = (
        select(Conversation)
        .where(
            Conversation.status.in_(
                [ConversationStatus.QUEUED.value, ConversationStatus.OFFERED.value]
            )
        )
        .order_by(Conversation.queued_at)
    )
    for conv in (await session.execute(waiting)).scalars():
        if conv.id not in restored and conv.queue_id in st.queues:
            if conv.status == ConversationStatus.OFFERED.value:
                conv.status = ConversationStatus.QUEUED.value
            item = await queued_work(session, st.queues, WorkFacts.of_row(conv))
            feed.append(rev.WorkQueued(item, now))
    return st
