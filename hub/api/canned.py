"""Canned responses: team-wide ones (supervisors and admins manage them) and personal ones.

Everyone on staff reads the team's responses and their own personal ones; nobody sees another
user's personal responses (404, not 403, so their existence does not leak). Listing with
``?conversation=`` filters by that conversation's channel and renders every body for it
(:mod:`hub.canned`), which is what the inbox composer inserts for editing.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import canned
from hub.actions.access import load_visible
from hub.api.framework import AGENTS_UP, ALL_STAFF, Api, Context
from hub.api.schemas import OkOut, Strict
from hub.auth.sessions import Principal
from hub.db.base import utcnow
from hub.db.canned_models import TEAM_OWNER_KEY, CannedResponse
from hub.db.models import Agent, Contact, Conversation, Queue
from hub.domain import Role
from hub.errors import Conflict, Forbidden, NotFound
from hub.ids import new_id

log = logging.getLogger(__name__)
api = Api()

ChannelName = Literal["voice", "email", "fax", "sms", "webchat"]
Scope = Literal["team", "personal"]
Shortcut = Annotated[str, AfterValidator(canned.check_shortcut)]
Body = Annotated[str, Field(min_length=1, max_length=canned.MAX_BODY),
                 AfterValidator(canned.check_body)]
Title = Annotated[str, Field(min_length=1, max_length=200)]


def _unique(channels: list[ChannelName] | None) -> list[ChannelName] | None:
    return None if channels is None else list(dict.fromkeys(channels))


class CannedIn(Strict):
    title: Title
    shortcut: Shortcut
    body: Body
    channels: list[ChannelName] = Field(default=[], description="[]: every channel")
    scope: Scope = "personal"

    _channels = field_validator("channels")(_unique)


class CannedPatch(Strict):
    title: Title | None = None
    shortcut: Shortcut | None = None
    body: Body | None = None
    channels: list[ChannelName] | None = None

    _channels = field_validator("channels")(_unique)


class CannedQuery(Strict):
    conversation: str | None = Field(default=None, description="render for this conversation")
    channel: ChannelName | None = None
    q: str | None = Field(default=None, max_length=100, description="shortcut or title prefix")


class CannedOut(BaseModel):
    id: str
    scope: Scope
    title: str
    shortcut: str
    body: str
    channels: list[str]
    owner_user_id: str | None
    updated_at: str
    rendered: str | None = None
    missing: list[str] = []
    editable: bool


class CannedPage(BaseModel):
    items: list[CannedOut]
    placeholders: dict[str, str]


def _may_edit(who: Principal, row: CannedResponse) -> bool:
    if row.owner_user_id is not None:
        return row.owner_user_id == who.user_id
    return who.role in {Role.SUPERVISOR, Role.ADMIN}


def _out(who: Principal, row: CannedResponse, rendered: canned.Rendered | None = None) -> CannedOut:
    return CannedOut(
        id=row.id,
        scope="personal" if row.owner_user_id else "team",
        title=row.title,
        shortcut=row.shortcut,
        body=row.body,
        channels=list(row.channels),
        owner_user_id=row.owner_user_id,
        updated_at=row.updated_at.isoformat(),
        rendered=rendered.text if rendered else None,
        missing=list(rendered.missing) if rendered else [],
        editable=_may_edit(who, row),
    )


async def placeholder_values(
    session: AsyncSession, who: Principal, conv: Conversation
) -> dict[str, str | None]:
    """The values of :data:`hub.canned.PLACEHOLDERS` for a reply by ``who`` on ``conv``."""
    contact = await session.get(Contact, conv.contact_id)
    addresses: dict[str, str] = {}
    for addr in contact.addresses if contact else []:
        addresses.setdefault(addr.kind, addr.value)
    queue = await session.get(Queue, conv.queue_id) if conv.queue_id else None
    agent = await session.get(Agent, who.agent_id) if who.agent_id else None
    agent_name = agent.display_name if agent else who.name
    contact_name = contact.name if contact else None
    return {
        "contact.name": contact_name,
        "contact.first_name": canned.first_word(contact_name),
        "contact.email": addresses.get("email"),
        "contact.phone": addresses.get("phone"),
        "agent.name": agent_name,
        "agent.first_name": canned.first_word(agent_name),
        "agent.email": who.email,
        "conversation.id": conv.id,
        "conversation.subject": conv.subject,
        "conversation.channel": conv.channel,
        "queue.name": queue.name if queue else None,
    }


def _visible(who: Principal) -> ColumnElement[bool]:
    return or_(CannedResponse.owner_user_id.is_(None), CannedResponse.owner_user_id == who.user_id)


async def _load(session: AsyncSession, who: Principal, canned_id: str) -> CannedResponse:
    row = await session.get(CannedResponse, canned_id)
    if row is None or (row.owner_user_id is not None and row.owner_user_id != who.user_id):
        raise NotFound(f"canned response {canned_id} not found")
    return row


async def _check_shortcut_free(
    session: AsyncSession, owner_key: str, shortcut: str, except_id: str | None = None
) -> None:
    taken = (
        await session.execute(
            select(CannedResponse.id).where(
                CannedResponse.owner_key == owner_key, CannedResponse.shortcut == shortcut
            )
        )
    ).scalar_one_or_none()
    if taken is not None and taken != except_id:
        scope = "team" if owner_key == TEAM_OWNER_KEY else "personal"
        raise Conflict(
            f"the {scope} shortcut /{shortcut} is already used",
            code="shortcut_taken",
            data={"field": "shortcut", "id": taken},
        )


@api.route(
    "GET",
    "/api/canned-responses",
    roles=ALL_STAFF,
    query=CannedQuery,
    response=CannedPage,
    tag="canned",
)
async def list_canned(ctx: Context) -> CannedPage:
    """The team's and my own responses (personal first); rendered when a conversation is given."""
    q: CannedQuery = ctx.query
    who = ctx.user
    async with ctx.services.sessions() as session:
        values: dict[str, str | None] | None = None
        channel = q.channel
        if q.conversation:
            conv = await load_visible(session, who, q.conversation)
            channel = channel or conv.channel  # type: ignore[assignment]
            values = await placeholder_values(session, who, conv)
        stmt = select(CannedResponse).where(_visible(who))
        rows = list((await session.execute(stmt)).scalars())
    if channel:
        rows = [r for r in rows if not r.channels or channel in r.channels]
    if q.q:
        needle = q.q.lower().lstrip("/")
        rows = [r for r in rows if r.shortcut.startswith(needle) or needle in r.title.lower()]
    rows.sort(key=lambda r: (r.owner_user_id is None, r.shortcut))
    items = [
        _out(who, r, canned.render(r.body, values) if values is not None else None) for r in rows
    ]
    return CannedPage(items=items, placeholders=canned.PLACEHOLDERS)


@api.route(
    "POST",
    "/api/canned-responses",
    roles=AGENTS_UP,
    body=CannedIn,
    response=CannedOut,
    status=201,
    tag="canned",
)
async def create_canned(ctx: Context) -> CannedOut:
    """Create a personal response, or (supervisors and admins) a team-wide one."""
    body: CannedIn = ctx.body
    who = ctx.user
    if body.scope == "team" and who.role not in {Role.SUPERVISOR, Role.ADMIN}:
        raise Forbidden("only supervisors and admins manage team-wide canned responses")
    owner = who.user_id if body.scope == "personal" else None
    owner_key = owner or TEAM_OWNER_KEY
    row = CannedResponse(
        id="cr" + new_id("rule")[2:],
        owner_key=owner_key,
        owner_user_id=owner,
        title=body.title,
        shortcut=body.shortcut,
        body=body.body,
        channels=list(body.channels),
        created_by=who.user_id,
    )
    try:
        async with ctx.services.sessions() as session, session.begin():
            await _check_shortcut_free(session, owner_key, body.shortcut)
            session.add(row)
    except IntegrityError:  # a concurrent create took the shortcut between check and insert
        raise Conflict(f"the shortcut /{body.shortcut} is already used",
                       code="shortcut_taken", data={"field": "shortcut"}) from None
    log.info("canned response %s created (%s) by %s", row.id, row.scope, who.user_id)
    return _out(who, row)


@api.route(
    "GET", "/api/canned-responses/{id}", roles=ALL_STAFF, response=CannedOut, tag="canned"
)
async def get_canned(ctx: Context) -> CannedOut:
    """One response (team-wide, or my own personal one)."""
    async with ctx.services.sessions() as session:
        return _out(ctx.user, await _load(session, ctx.user, ctx.path["id"]))


@api.route(
    "PATCH",
    "/api/canned-responses/{id}",
    roles=AGENTS_UP,
    body=CannedPatch,
    response=CannedOut,
    tag="canned",
)
async def update_canned(ctx: Context) -> CannedOut:
    """Change the given fields; team-wide responses need a supervisor or admin."""
    body: CannedPatch = ctx.body
    who = ctx.user
    try:
        async with ctx.services.sessions() as session, session.begin():
            row = await _load(session, who, ctx.path["id"])
            if not _may_edit(who, row):
                raise Forbidden("only supervisors and admins manage team-wide canned responses")
            if body.shortcut is not None and body.shortcut != row.shortcut:
                await _check_shortcut_free(session, row.owner_key, body.shortcut, row.id)
            for name, value in body.model_dump(exclude_none=True).items():
                setattr(row, name, value)
            row.updated_at = utcnow()
    except IntegrityError:
        raise Conflict("that shortcut is already used", code="shortcut_taken",
                       data={"field": "shortcut"}) from None
    return _out(who, row)


@api.route(
    "DELETE", "/api/canned-responses/{id}", roles=AGENTS_UP, response=OkOut, tag="canned"
)
async def delete_canned(ctx: Context) -> OkOut:
    """Delete; team-wide responses need a supervisor or admin."""
    who = ctx.user
    async with ctx.services.sessions() as session, session.begin():
        row = await _load(session, who, ctx.path["id"])
        if not _may_edit(who, row):
            raise Forbidden("only supervisors and admins manage team-wide canned responses")
        await session.delete(row)
    log.info("canned response %s deleted by %s", ctx.path["id"], who.user_id)
    return OkOut()
