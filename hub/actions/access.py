"""Who may see or act on a conversation (used by the API and the realtime namespace)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth.sessions import Principal
from hub.db.models import Assignment, Conversation, Offer
from hub.domain import OfferStatus, Role
from hub.errors import Forbidden, NotFound


async def can_view(session: AsyncSession, who: Principal, conv: Conversation) -> bool:
    """Supervisors, admins and QA see everything; an agent sees unassigned work, their own
    conversations, ones they held before and ones offered to them."""
    if who.role is not Role.AGENT:
        return True
    if conv.assignee_id is None or conv.assignee_id == who.agent_id:
        return True
    if who.agent_id is None:
        return False
    held = await session.execute(
        select(Assignment.id)
        .where(Assignment.conversation_id == conv.id, Assignment.agent_id == who.agent_id)
        .limit(1)
    )
    if held.first() is not None:
        return True
    offered = await session.execute(
        select(Offer.id)
        .where(
            Offer.conversation_id == conv.id,
            Offer.agent_id == who.agent_id,
            Offer.status == OfferStatus.PENDING.value,
        )
        .limit(1)
    )
    return offered.first() is not None


def can_act(who: Principal, conv: Conversation) -> bool:
    """Replying, resolving and transferring: the assignee, or a supervisor/admin."""
    if who.role in (Role.SUPERVISOR, Role.ADMIN):
        return True
    return (
        who.role is Role.AGENT
        and conv.assignee_id is not None
        and (conv.assignee_id == who.agent_id)
    )


async def load_visible(session: AsyncSession, who: Principal, conv_id: str) -> Conversation:
    conv = await session.get(Conversation, conv_id)
    if conv is None or not await can_view(session, who, conv):
        raise NotFound(f"conversation {conv_id} not found")  # no existence leak
    return conv


async def load_actionable(session: AsyncSession, who: Principal, conv_id: str) -> Conversation:
    conv = await load_visible(session, who, conv_id)
    if not can_act(who, conv):
        raise Forbidden("only the assigned agent or a supervisor may do this", code="not_assignee")
    return conv
