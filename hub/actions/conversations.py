"""What agents do to a conversation: reply, note, resolve, reopen, transfer.

Each ``do_*`` runs in the caller's transaction and returns the events to publish after commit.
Replies are not sent here: they are appended to the log and put in the delivery outbox, so a
crash between "agent pressed send" and "channel accepted it" loses nothing (the delivery worker
picks the row up again).

A reply is also split in two for SQLite: :func:`prepare_reply` (reads and checks, no write
lock) and :func:`commit_reply` (its writes, :mod:`hub.actions.reply_write`, as one short
transaction on the group-commit writer), so agents' replies do not hold the single write lock
that every visitor's ack waits for. :func:`do_reply` is both in one transaction (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from channels.base import (
    Address,
    AddressKind,
    Attachment,
    Channel,
    ChannelKind,
    Outbound,
    PermanentChannelError,
    SendPrecheck,
)
from hub.actions.batch_writer import BatchWriter
from hub.actions.log import append, entry_dict, interaction_dict, interaction_values
from hub.actions.queued import WORK_KEY, conversation_work
from hub.actions.reply_write import ReplyWrite, resolved_conflict
from hub.auth.sessions import Principal
from hub.db.base import utcnow
from hub.db.engine import SessionFactory
from hub.db.models import (
    Agent,
    Assignment,
    ContactAddress,
    Conversation,
    Interaction,
    Queue,
)
from hub.domain import ActorType, ConversationStatus, Direction, InteractionKind
from hub.errors import Conflict, NotFound, ValidationFailed
from hub.events import Event
from hub.ids import new_id

ADDRESS_KIND_FOR_CHANNEL = {
    "email": "email",
    "sms": "phone",
    "voice": "phone",
    "fax": "phone",
    "webchat": "visitor",
}


def conversation_rooms(conv: Conversation) -> tuple[str, ...]:
    """Who sees a change to ``conv`` live: its timeline, its queue, its assignee."""
    rooms = [f"conversation:{conv.id}", f"queue:{conv.queue_id}"]
    if conv.assignee_id:
        rooms.append(f"agent:{conv.assignee_id}")
    return tuple(rooms)


def conversation_event(name: str, conv: Conversation, **extra: Any) -> Event:
    """A conversation change; ``conversation.queued`` also carries the routing facts
    (:mod:`hub.actions.queued`), so the dispatcher need not read the row back."""
    data = {
        "id": conv.id,
        "status": conv.status,
        "queue_id": conv.queue_id,
        "assignee_id": conv.assignee_id,
        **extra,
    }
    if name == "conversation.queued":
        data[WORK_KEY] = conversation_work(conv)
    return Event(name, data, rooms=conversation_rooms(conv))


# built once: every reply asks it, and building it cost about as much as running it
_LATEST_INBOUND_PAYLOAD = (
    select(Interaction.payload)
    .where(
        Interaction.conversation_id == bindparam("conv_id"),
        Interaction.direction == Direction.INBOUND.value,
    )
    .order_by(Interaction.seq.desc())
    .limit(1)
)


async def _recipient(session: AsyncSession, conv: Conversation) -> str:
    """Who a reply goes to: the sender of the latest inbound item, else the contact's address."""
    last = (
        await session.execute(_LATEST_INBOUND_PAYLOAD, {"conv_id": conv.id})
    ).scalar_one_or_none()
    if last and isinstance(last.get("sender"), str) and ":" in last["sender"]:
        return str(last["sender"])
    kind = ADDRESS_KIND_FOR_CHANNEL[conv.channel]
    addr = (
        await session.execute(
            select(ContactAddress)
            .where(ContactAddress.contact_id == conv.contact_id, ContactAddress.kind == kind)
            .limit(1)
        )
    ).scalar_one_or_none()
    if addr is None:
        raise Conflict(f"the contact has no {kind} address to reply to", code="no_address")
    return f"{addr.kind}:{addr.value}"


async def check_reply_sendable(
    channel: Channel | None,
    conv: Conversation,
    to: str,
    *,
    text: str,
    html: str | None,
    subject: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> None:
    """Ask the channel (when it implements ``SendPrecheck``) whether it would refuse this reply,
    so the agent gets the reason now (409 with the channel's code) and nothing is queued."""
    if not isinstance(channel, SendPrecheck):
        return
    kind, _, value = to.partition(":")
    outbound = Outbound(
        channel=ChannelKind(conv.channel),
        channel_id=channel.channel_id,
        conversation_id=conv.id,
        to=Address(AddressKind(kind), value),
        text=text,
        html=html,
        subject=subject or conv.subject,
        attachments=attachments,
        idempotency_key=f"precheck:{conv.id}",
    )
    try:
        await channel.check_send(outbound)
    except PermanentChannelError as exc:
        raise Conflict(str(exc), code=exc.code, data={"channel": conv.channel}) from None


@dataclass(frozen=True, slots=True)
class ReplyDraft:
    """What the agent sent, before any check or write (``files``: each an attachment and its
    media key)."""

    text: str
    html: str | None = None
    subject: str | None = None
    client_id: str | None = None
    files: Sequence[tuple[Attachment, str]] = ()


async def prepare_reply(
    session: AsyncSession,
    who: Principal,
    conv: Conversation,
    draft: ReplyDraft,
    channel: Channel | None = None,
) -> dict[str, Any] | ReplyWrite:
    """A reply's reads and checks, no writes (so no write lock): the stored entry's API shape
    when this ``client_id`` was already replied, else the writes to run."""
    if conv.status == ConversationStatus.RESOLVED.value:
        raise resolved_conflict()
    text, html, subject, files = draft.text, draft.html, draft.subject, draft.files
    key = f"reply:{conv.id}:{draft.client_id}" if draft.client_id else None
    if key is not None:
        prior = await _prior_reply(session, key)
        if prior is not None:
            return prior
    to = await _recipient(session, conv)
    await check_reply_sendable(
        channel,
        conv,
        to,
        text=text,
        html=html,
        subject=subject,
        attachments=tuple(a for a, _ in files),
    )
    now = utcnow()
    entry = interaction_values(
        conv.id,
        0,  # numbered in the transaction
        kind=InteractionKind.MESSAGE,
        direction=Direction.OUTBOUND,
        channel=conv.channel,
        actor_type=ActorType.AGENT,
        actor_id=who.agent_id or who.user_id,
        text=text,
        html=html,
        subject=subject or conv.subject,
        payload={"to": to, "author_name": who.name},
        dedupe_key=key,
        at=now,
    )
    del entry["seq"]
    attachments = tuple(
        {
            "id": new_id("attachment"),
            "interaction_id": entry["id"],
            "filename": att.filename,
            "content_type": att.content_type,
            "size": att.size,
            "sha256": sha256,
        }
        for att, sha256 in files
    )
    delivery = {
        "id": new_id("delivery"),
        "interaction_id": entry["id"],
        "channel": conv.channel,
        "channel_instance_id": conv.channel_instance_id,
    }
    return ReplyWrite(entry, attachments, delivery)


async def _prior_reply(session: AsyncSession, key: str) -> dict[str, Any] | None:
    prior = (
        await session.execute(select(Interaction).where(Interaction.dedupe_key == key))
    ).scalar_one_or_none()
    return None if prior is None else interaction_dict(prior)


def _reply_stored(
    conv: Conversation, write: ReplyWrite, row: dict[str, Any]
) -> tuple[dict[str, Any], list[Event]]:
    now = row["created_at"]
    set_committed_value(conv, "last_message_at", now)
    set_committed_value(conv, "updated_at", now)
    out = entry_dict(row, write.attachments)
    return out, [
        Event("interaction.created", out, rooms=conversation_rooms(conv)),
        Event("delivery.queued", {"interaction_id": row["id"]}),
    ]


async def do_reply(
    session: AsyncSession,
    who: Principal,
    conv: Conversation,
    draft: ReplyDraft,
    channel: Channel | None = None,
) -> tuple[dict[str, Any], list[Event]]:
    """Append the reply and queue it, in the caller's transaction (reads and writes together:
    PostgreSQL, where no single write lock makes that costly). Returns the entry's API shape."""
    step = await prepare_reply(session, who, conv, draft, channel)
    if not isinstance(step, ReplyWrite):
        return step, []
    conn = await session.connection()
    return _reply_stored(conv, step, await conn.run_sync(step))


async def commit_reply(
    writer: BatchWriter, sessions: SessionFactory, conv: Conversation, step: ReplyWrite
) -> tuple[dict[str, Any], list[Event]]:
    """Run a prepared reply's writes as their own short transaction on ``writer`` (SQLite: the
    group-commit writer's connection, lock held well under a millisecond). A concurrent reply
    with the same ``client_id`` that committed first wins: its entry is returned, no events."""
    try:
        row = await writer.run(step)
    except IntegrityError:
        key = step.entry["dedupe_key"]
        if key is None:
            raise
        async with sessions() as session:
            prior = await _prior_reply(session, key)
        if prior is None:
            raise
        return prior, []
    return _reply_stored(conv, step, row)


async def do_note(
    session: AsyncSession, who: Principal, conv: Conversation, text: str
) -> tuple[Interaction, list[Event]]:
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.NOTE,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.AGENT,
        actor_id=who.agent_id or who.user_id,
        text=text,
        payload={"author_name": who.name},
    )
    set_committed_value(row, "attachments", [])  # a note has none: no reload to learn it
    await session.flush()
    return row, [
        Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv))
    ]


async def _end_assignment(session: AsyncSession, conv: Conversation, reason: str) -> None:
    await session.execute(
        update(Assignment)
        .where(Assignment.conversation_id == conv.id, Assignment.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )


async def _status(
    session: AsyncSession,
    who: Principal,
    conv: Conversation,
    status: ConversationStatus,
    **payload: Any,
) -> Event:
    """Log a status change; returns the event that shows it live in open timelines."""
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.STATUS,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.AGENT,
        actor_id=who.agent_id or who.user_id,
        payload={"status": status.value, **payload},
    )
    return Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv))


async def do_resolve(session: AsyncSession, who: Principal, conv: Conversation) -> list[Event]:
    if conv.status == ConversationStatus.RESOLVED.value:
        raise Conflict("conversation is already resolved", code="invalid_state")
    previous_assignee = conv.assignee_id
    conv.status = ConversationStatus.RESOLVED.value
    conv.resolved_at = utcnow()
    await _end_assignment(session, conv, "resolved")
    logged = await _status(session, who, conv, ConversationStatus.RESOLVED)
    return [
        logged,
        conversation_event("conversation.resolved", conv, previous_assignee=previous_assignee),
    ]


async def do_reopen(session: AsyncSession, who: Principal, conv: Conversation) -> list[Event]:
    if conv.status != ConversationStatus.RESOLVED.value:
        raise Conflict("only a resolved conversation can be reopened", code="invalid_state")
    conv.status = ConversationStatus.QUEUED.value
    conv.assignee_id = None
    conv.resolved_at = None
    conv.queued_at = utcnow()
    logged = await _status(session, who, conv, ConversationStatus.QUEUED, reason="reopened")
    return [logged, conversation_event("conversation.queued", conv)]


async def do_transfer(
    session: AsyncSession,
    who: Principal,
    conv: Conversation,
    *,
    agent_id: str | None,
    queue_id: str | None,
    note: str | None,
) -> list[Event]:
    if (agent_id is None) == (queue_id is None):
        raise ValidationFailed("give exactly one of agent_id or queue_id", code="invalid_transfer")
    if conv.status == ConversationStatus.RESOLVED.value:
        raise Conflict("a resolved conversation cannot be transferred", code="resolved")
    previous: dict[str, Any] = {"agent_id": conv.assignee_id, "queue_id": conv.queue_id}
    await _end_assignment(session, conv, "transferred")
    if agent_id is not None:
        if await session.get(Agent, agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")
        conv.assignee_id = agent_id
        conv.status = ConversationStatus.ASSIGNED.value
        session.add(Assignment(id=new_id("assignment"), conversation_id=conv.id, agent_id=agent_id))
    else:
        assert queue_id is not None
        if await session.get(Queue, queue_id) is None:
            raise NotFound(f"queue {queue_id} not found")
        conv.queue_id = queue_id
        conv.assignee_id = None
        conv.status = ConversationStatus.QUEUED.value
        conv.queued_at = utcnow()
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.TRANSFER,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.AGENT,
        actor_id=who.agent_id or who.user_id,
        text=note or "",
        payload={
            "from": previous,
            "to": {"agent_id": agent_id, "queue_id": queue_id},
            "by": who.user_id,
        },
    )
    name = "conversation.assigned" if agent_id else "conversation.queued"
    return [
        Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv)),
        conversation_event("conversation.transferred", conv, previous=previous),
        conversation_event(name, conv),
    ]
