"""Agents, queues and users: the organization the router works with."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hub.api.framework import ADMINS, AGENTS_UP, ALL_STAFF, Api, Context
from hub.api.schemas import PresenceIn, UserCreateIn, UserOut
from hub.auth.passwords import hash_password
from hub.db.base import utcnow
from hub.db.models import Agent, Conversation, Queue, User
from hub.domain import OPEN_STATUSES, ConversationStatus, Role
from hub.errors import Conflict, NotFound
from hub.events import Event
from hub.ids import new_id

api = Api()


def agent_dict(a: Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "user_id": a.user_id,
        "name": a.display_name,
        "presence": a.presence,
        "presence_reason": a.presence_reason,
        "presence_since": a.presence_since.isoformat(),
        "capacity": a.capacity,
        "call_blocks_all": a.call_blocks_all,
        "tier": a.tier,
        "skills": {s.skill.name: s.level for s in a.skills},
    }


@api.route("GET", "/api/agents", roles=ALL_STAFF, tag="directory")
async def list_agents(ctx: Context) -> dict[str, Any]:
    """Every agent with presence, skills and capacity."""
    async with ctx.services.sessions() as session:
        rows = (await session.execute(select(Agent).order_by(Agent.display_name))).scalars()
        return {"items": [agent_dict(a) for a in rows]}


@api.route("GET", "/api/agents/{id}", roles=ALL_STAFF, tag="directory")
async def get_agent(ctx: Context) -> dict[str, Any]:
    """One agent."""
    async with ctx.services.sessions() as session:
        agent = await session.get(Agent, ctx.path["id"])
        if agent is None:
            raise NotFound(f"agent {ctx.path['id']} not found")
        return agent_dict(agent)


@api.route("PUT", "/api/agents/me/presence", roles=AGENTS_UP, body=PresenceIn, tag="directory")
async def set_presence(ctx: Context) -> dict[str, Any]:
    """Set my presence: ready, not_ready (with a reason), wrap_up or offline."""
    body: PresenceIn = ctx.body
    if ctx.user.agent_id is None:
        raise Conflict("this user has no agent profile", code="not_an_agent")
    async with ctx.services.sessions() as session, session.begin():
        agent = await session.get(Agent, ctx.user.agent_id)
        assert agent is not None
        agent.presence = body.presence.value
        agent.presence_reason = body.reason if body.presence.value == "not_ready" else None
        agent.presence_since = utcnow()
        out = agent_dict(agent)
    await ctx.services.bus.publish(
        [Event("agent.presence", out, rooms=(f"agent:{out['id']}", "supervisors"))]
    )
    return out


@api.route("GET", "/api/queues", roles=ALL_STAFF, tag="directory")
async def list_queues(ctx: Context) -> dict[str, Any]:
    """Queues with their settings and live depth (queued and open work)."""
    async with ctx.services.sessions() as session:
        queues = (await session.execute(select(Queue).order_by(Queue.name))).scalars().all()
        counts: dict[str | None, Any] = dict(
            (
                await session.execute(
                    select(Conversation.queue_id, func.count())
                    .where(Conversation.status == ConversationStatus.QUEUED.value)
                    .group_by(Conversation.queue_id)
                )
            ).all()
        )
        oldest: dict[str | None, Any] = dict(
            (
                await session.execute(
                    select(Conversation.queue_id, func.min(Conversation.queued_at))
                    .where(Conversation.status == ConversationStatus.QUEUED.value)
                    .group_by(Conversation.queue_id)
                )
            ).all()
        )
        open_counts: dict[str | None, Any] = dict(
            (
                await session.execute(
                    select(Conversation.queue_id, func.count())
                    .where(Conversation.status.in_([s.value for s in OPEN_STATUSES]))
                    .group_by(Conversation.queue_id)
                )
            ).all()
        )
    now = utcnow()
    items = []
    for q in queues:
        since = oldest.get(q.id)
        items.append(
            {
                "id": q.id,
                "name": q.name,
                "description": q.description,
                "required_skills": q.required_skills,
                "distribution": q.distribution,
                "priority": q.priority,
                "offer_ttl_s": q.offer_ttl_s,
                "service_level": {"target_pct": q.sl_target_pct, "target_s": q.sl_target_s},
                "depth": counts.get(q.id, 0),
                "open": open_counts.get(q.id, 0),
                "oldest_wait_s": round((now - since).total_seconds(), 1) if since else None,
            }
        )
    dispatcher = ctx.services.extras.get("dispatcher")
    live = dispatcher.snapshot() if dispatcher is not None else None
    if live is not None:
        for item in items:
            item["live"] = live["queues"].get(item["id"])
    return {
        "items": items,
        "unrouted": counts.get(None, 0),
        "routing": {k: v for k, v in live.items() if k != "queues"} if live else None,
    }


@api.route("GET", "/api/users", roles=ADMINS, tag="admin")
async def list_users(ctx: Context) -> dict[str, Any]:
    """Every user account (admin only)."""
    async with ctx.services.sessions() as session:
        rows = (await session.execute(select(User).order_by(User.email))).scalars().all()
    return {
        "items": [
            {"id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active}
            for u in rows
        ]
    }


@api.route(
    "POST", "/api/users", roles=ADMINS, body=UserCreateIn, response=UserOut, status=201, tag="admin"
)
async def create_user(ctx: Context) -> UserOut:
    """Create a user; agents and supervisors also get an agent profile."""
    body: UserCreateIn = ctx.body
    async with ctx.services.sessions() as session, session.begin():
        user, agent = await create_user_rows(
            session, body.email, body.name, body.role, hash_password(body.password)
        )
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        agent_id=agent.id if agent else None,
    )


async def create_user_rows(
    session: Any, email: str, name: str, role: Role, password_hash: str
) -> tuple[User, Agent | None]:
    """Shared by the API and the CLI."""
    email = email.strip().lower()
    if (await session.execute(select(User.id).where(User.email == email))).first():
        raise Conflict(f"a user with email {email} exists", code="duplicate")
    user = User(
        id=new_id("user"), email=email, name=name, role=role.value, password_hash=password_hash
    )
    session.add(user)
    agent = None
    if role in (Role.AGENT, Role.SUPERVISOR):
        agent = Agent(
            id=new_id("agent"),
            user_id=user.id,
            display_name=name,
            capacity={"voice": 1, "webchat": 3, "email": 5, "sms": 3, "fax": 2},
        )
        session.add(agent)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a user with email {email} exists", code="duplicate") from None
    return user, agent
