"""Conversations: list with filters, detail, timeline, reply, notes, resolve/reopen, transfer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from channels.base import Channel
from hub.actions import conversations as actions
from hub.actions.access import load_actionable, load_visible
from hub.actions.batch_writer import BatchWriter, SqliteWriter, shared_writer
from hub.actions.log import interaction_dict
from hub.api.attachments import reply_files
from hub.api.framework import AGENTS_UP, ALL_STAFF, Api, Context
from hub.api.schemas import (
    ConversationOut,
    ConversationPage,
    ConversationQuery,
    InteractionPage,
    NoteIn,
    OkOut,
    ReplyIn,
    TransferIn,
)
from hub.channel_host import ChannelHost
from hub.db.models import Conversation, Interaction, OutboundDelivery
from hub.domain import Role
from hub.events import Event

api = Api()


def conversation_out(c: Conversation) -> ConversationOut:
    return ConversationOut(
        id=c.id,
        contact_id=c.contact_id,
        channel=c.channel,
        queue_id=c.queue_id,
        status=c.status,
        assignee_id=c.assignee_id,
        priority=c.priority,
        subject=c.subject,
        attributes=c.attributes,
        created_at=c.created_at.isoformat(),
        last_message_at=c.last_message_at.isoformat(),
        resolved_at=c.resolved_at.isoformat() if c.resolved_at else None,
    )


@api.route(
    "GET",
    "/api/conversations",
    roles=ALL_STAFF,
    query=ConversationQuery,
    response=ConversationPage,
    tag="conversations",
)
async def list_conversations(ctx: Context) -> ConversationPage:
    """Conversations newest first, filtered; agents see unassigned work and their own."""
    q: ConversationQuery = ctx.query
    who = ctx.user
    stmt = select(Conversation)
    if q.status:
        stmt = stmt.where(Conversation.status == q.status.value)
    if q.channel:
        stmt = stmt.where(Conversation.channel == q.channel)
    if q.queue:
        stmt = stmt.where(Conversation.queue_id == q.queue)
    if q.contact:
        stmt = stmt.where(Conversation.contact_id == q.contact)
    if q.assignee == "none":
        stmt = stmt.where(Conversation.assignee_id.is_(None))
    elif q.assignee:
        stmt = stmt.where(
            Conversation.assignee_id == (who.agent_id if q.assignee == "me" else q.assignee)
        )
    if who.role is Role.AGENT:
        stmt = stmt.where(
            or_(Conversation.assignee_id.is_(None), Conversation.assignee_id == who.agent_id)
        )
    if q.cursor:
        stmt = stmt.where(Conversation.id < q.cursor)
    stmt = stmt.order_by(Conversation.id.desc()).limit(q.limit + 1)
    async with ctx.services.sessions() as session:
        rows = list((await session.execute(stmt)).scalars().all())
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return ConversationPage(
        items=[conversation_out(c) for c in rows], next_cursor=rows[-1].id if more else None
    )


@api.route(
    "GET", "/api/conversations/{id}", roles=ALL_STAFF, response=ConversationOut, tag="conversations"
)
async def get_conversation(ctx: Context) -> ConversationOut:
    """One conversation."""
    async with ctx.services.sessions() as session:
        return conversation_out(await load_visible(session, ctx.user, ctx.path["id"]))


@api.route(
    "GET",
    "/api/conversations/{id}/interactions",
    roles=ALL_STAFF,
    response=InteractionPage,
    tag="conversations",
)
async def list_interactions(ctx: Context) -> InteractionPage:
    """The conversation's timeline, oldest first, with each reply's delivery status."""
    async with ctx.services.sessions() as session:
        conv = await load_visible(session, ctx.user, ctx.path["id"])
        rows = (
            await session.execute(
                select(Interaction, OutboundDelivery.status, OutboundDelivery.last_error)
                .outerjoin(OutboundDelivery, OutboundDelivery.interaction_id == Interaction.id)
                .where(Interaction.conversation_id == conv.id)
                .order_by(Interaction.seq)
            )
        ).all()
    items: list[dict[str, Any]] = []
    for row, status, error in rows:
        item = interaction_dict(row)
        if status is not None:
            item["delivery"] = {"status": status, "error": error}
        items.append(item)
    return InteractionPage(items=items)


def _channel_for(ctx: Context, conv: Conversation) -> Channel | None:
    """The running channel a reply on ``conv`` will go through (for its send precheck)."""
    host = ctx.services.extras.get("channel_host")
    if not isinstance(host, ChannelHost):
        return None
    return host.channels.get(conv.channel_instance_id or "") or host.channels.get(conv.channel)


async def _publish(ctx: Context, events: list[Event]) -> None:
    await ctx.services.bus.publish(events)


@api.route(
    "POST",
    "/api/conversations/{id}/messages",
    roles=AGENTS_UP,
    body=ReplyIn,
    status=201,
    tag="conversations",
)
async def reply(ctx: Context) -> dict[str, Any]:
    """Reply on the conversation's own channel (queued for delivery; idempotent by client_id)."""
    body: ReplyIn = ctx.body
    files = await reply_files(ctx, body.attachments)
    draft = actions.ReplyDraft(body.text, body.html, body.subject, body.client_id, files)
    writer = _reply_writer(ctx)
    if writer is None:
        async with ctx.services.sessions() as session, session.begin():
            conv = await load_actionable(session, ctx.user, ctx.path["id"])
            channel = _channel_for(ctx, conv)
            out, events = await actions.do_reply(session, ctx.user, conv, draft, channel)
    else:
        # SQLite: the reads take no write lock; the writes are one short transaction
        async with ctx.services.sessions() as session:
            conv = await load_actionable(session, ctx.user, ctx.path["id"])
            channel = _channel_for(ctx, conv)
            step = await actions.prepare_reply(session, ctx.user, conv, draft, channel)
        if isinstance(step, dict):
            out, events = step, []
        else:
            out, events = await actions.commit_reply(writer, ctx.services.sessions, conv, step)
    await _publish(ctx, events)
    return out


def _reply_writer(ctx: Context) -> BatchWriter | None:
    """SQLite's writer for a reply's writes, or None: elsewhere (PostgreSQL, no single write
    lock) reads and writes stay one transaction, as the API always had them."""
    writer = shared_writer(ctx.services.sessions, ctx.services.extras)
    return writer if isinstance(writer, SqliteWriter) else None


@api.route(
    "POST",
    "/api/conversations/{id}/notes",
    roles=ALL_STAFF,
    body=NoteIn,
    status=201,
    tag="conversations",
)
async def note(ctx: Context) -> dict[str, Any]:
    """A private note, visible to staff only."""
    body: NoteIn = ctx.body
    async with ctx.services.sessions() as session, session.begin():
        conv = await load_visible(session, ctx.user, ctx.path["id"])
        row, events = await actions.do_note(session, ctx.user, conv, body.text)
        out = interaction_dict(row)
    await _publish(ctx, events)
    return out


@api.route(
    "POST", "/api/conversations/{id}/resolve", roles=AGENTS_UP, response=OkOut, tag="conversations"
)
async def resolve(ctx: Context) -> OkOut:
    """Mark resolved; the assignee's capacity is freed."""
    async with ctx.services.sessions() as session, session.begin():
        conv = await load_actionable(session, ctx.user, ctx.path["id"])
        events = await actions.do_resolve(session, ctx.user, conv)
    await _publish(ctx, events)
    return OkOut()


@api.route(
    "POST", "/api/conversations/{id}/reopen", roles=AGENTS_UP, response=OkOut, tag="conversations"
)
async def reopen(ctx: Context) -> OkOut:
    """Put a resolved conversation back in its queue."""
    async with ctx.services.sessions() as session, session.begin():
        conv = await load_visible(session, ctx.user, ctx.path["id"])
        events = await actions.do_reopen(session, ctx.user, conv)
    await _publish(ctx, events)
    return OkOut()


@api.route(
    "POST",
    "/api/conversations/{id}/transfer",
    roles=AGENTS_UP,
    body=TransferIn,
    response=OkOut,
    tag="conversations",
)
async def transfer(ctx: Context) -> OkOut:
    """Hand over to another agent or queue; the timeline records from whom and to whom."""
    body: TransferIn = ctx.body
    async with ctx.services.sessions() as session, session.begin():
        conv = await load_actionable(session, ctx.user, ctx.path["id"])
        events = await actions.do_transfer(
            session, ctx.user, conv, agent_id=body.agent_id, queue_id=body.queue_id, note=body.note
        )
    await _publish(ctx, events)
    return OkOut()
