"""Ingest: one normalized :class:`~channels.base.Inbound` becomes stored, threaded, routed work.

Everything happens in one transaction: dedupe on ``(channel, channel_id, external_id)``, resolve
or create the contact from the sender address, thread into a conversation (explicit references
first, then the contact's open conversation on that channel), decide queue and priority from the
routing rules, append the interaction. Events are published only after the commit.

Concurrency: two deliveries of the same message, or two first messages from one new address, may
race. Unique constraints (``interactions.dedupe_key``, ``contact_addresses(kind, value)``) make the
loser fail at flush; the transaction is retried and then finds the winner's rows. So the same
message is stored exactly once and an address always maps to one contact.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelKind, Inbound, InboundKind, IngestReceipt
from hub.actions.log import append, interaction_dict
from hub.db.base import utcnow
from hub.db.engine import SessionFactory
from hub.db.models import (
    AttachmentRecord,
    ChannelInstance,
    Contact,
    ContactAddress,
    Conversation,
    ConversationRef,
    Interaction,
    RoutingRule,
)
from hub.domain import OPEN_STATUSES, ActorType, ConversationStatus, Direction, InteractionKind
from hub.events import Event, EventBus
from hub.ids import new_id
from hub.rules import Facts, Rule, decide

log = logging.getLogger(__name__)

MediaPut = Callable[[bytes, str], Awaitable[str]]  # (data, content_type) -> sha256 key

CONVERSATION_REF_PREFIX = "conversation:"  # a thread ref naming a conversation id directly


def dedupe_key(inbound: Inbound) -> str:
    return f"{inbound.channel}:{inbound.channel_id}:{inbound.external_id}"[:1100]


@dataclass(frozen=True, slots=True)
class _Outcome:
    receipt: IngestReceipt
    events: list[Event]


async def _resolve_contact(session: AsyncSession, inbound: Inbound) -> tuple[Contact, bool]:
    row = (
        await session.execute(
            select(ContactAddress).where(
                ContactAddress.kind == inbound.sender.kind.value,
                ContactAddress.value == inbound.sender.value,
            )
        )
    ).scalar_one_or_none()
    if row is not None:
        contact = await session.get(Contact, row.contact_id)
        assert contact is not None
        seen: set[str] = set()
        while contact.merged_into_id and contact.id not in seen:  # follow merges
            seen.add(contact.id)
            nxt = await session.get(Contact, contact.merged_into_id)
            if nxt is None:
                break
            contact = nxt
        if inbound.sender_name and not contact.name:
            contact.name = inbound.sender_name[:200]
        return contact, False
    contact = Contact(id=new_id("contact"), name=(inbound.sender_name or None), attributes={})
    session.add(contact)
    session.add(
        ContactAddress(
            id=new_id("address"),
            contact_id=contact.id,
            kind=inbound.sender.kind.value,
            value=inbound.sender.value,
        )
    )
    await session.flush()  # surfaces an address race as IntegrityError now
    return contact, True


async def _find_thread(
    session: AsyncSession, inbound: Inbound, contact: Contact
) -> Conversation | None:
    direct = [
        r[len(CONVERSATION_REF_PREFIX) :]
        for r in inbound.thread_refs
        if r.startswith(CONVERSATION_REF_PREFIX)
    ]
    others = [r for r in inbound.thread_refs if not r.startswith(CONVERSATION_REF_PREFIX)]
    for conv_id in direct:
        conv = await session.get(Conversation, conv_id)
        if conv is not None and conv.contact_id == contact.id:
            return conv
    if others:
        ref = (
            await session.execute(
                select(ConversationRef)
                .where(
                    ConversationRef.channel == inbound.channel.value,
                    ConversationRef.ref.in_(others),
                )
                .limit(1)
            )
        ).scalar_one_or_none()
        if ref is not None:
            return await session.get(Conversation, ref.conversation_id)
    return (
        await session.execute(
            select(Conversation)
            .where(
                Conversation.contact_id == contact.id,
                Conversation.channel == inbound.channel.value,
                Conversation.status.in_([s.value for s in OPEN_STATUSES]),
            )
            .order_by(Conversation.last_message_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _channel_instance(session: AsyncSession, inbound: Inbound) -> ChannelInstance | None:
    return (
        await session.execute(
            select(ChannelInstance).where(
                ChannelInstance.kind == inbound.channel.value,
                ChannelInstance.address == inbound.channel_id,
            )
        )
    ).scalar_one_or_none()


async def _route(
    session: AsyncSession, inbound: Inbound, contact: Contact, instance: ChannelInstance | None
) -> tuple[str | None, int, tuple[str, ...]]:
    rows = (await session.execute(select(RoutingRule))).scalars().all()
    rules = [Rule(r.name, r.position, r.conditions, r.queue_id, r.priority, r.stop) for r in rows]
    facts = Facts(
        channel=inbound.channel.value,
        address=inbound.channel_id,
        text=f"{inbound.subject or ''}\n{inbound.text}",
        contact_attributes=contact.attributes,
        metadata=inbound.metadata,
    )
    decision = decide(rules, facts, fallback_queue=instance.queue_id if instance else None)
    return decision.queue_id, decision.priority, decision.matched


class Ingestor:
    """The hub's :class:`channels.base.Sink`: adapters call it with each inbound item."""

    def __init__(
        self,
        sessions: SessionFactory,
        bus: EventBus,
        media_put: MediaPut,
        *,
        reopen_resolved: bool = True,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._media_put = media_put
        self._reopen_resolved = reopen_resolved

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        stored = [
            (att, await self._media_put(att.data, att.content_type)) for att in inbound.attachments
        ]
        last: IntegrityError | None = None
        for _attempt in range(4):
            try:
                outcome = await self._ingest_once(inbound, stored)
            except IntegrityError as exc:  # lost a race; the retry sees the winner's rows
                last = exc
                continue
            await self._bus.publish(outcome.events)
            return outcome.receipt
        raise RuntimeError("ingest kept conflicting") from last

    async def _ingest_once(self, inbound: Inbound, stored: list[Any]) -> _Outcome:
        key = dedupe_key(inbound)
        async with self._sessions() as session, session.begin():
            existing = (
                await session.execute(select(Interaction).where(Interaction.dedupe_key == key))
            ).scalar_one_or_none()
            if existing is not None:
                conv = await session.get(Conversation, existing.conversation_id)
                assert conv is not None
                log.info("duplicate inbound %s ignored (interaction %s)", key[:80], existing.id)
                return _Outcome(
                    IngestReceipt(existing.id, conv.id, conv.contact_id, created=False), []
                )
            return await self._do_ingest(session, inbound, key, stored)

    async def _do_ingest(
        self, session: AsyncSession, inbound: Inbound, key: str, stored: list[Any]
    ) -> _Outcome:
        now = utcnow()
        contact, new_contact = await _resolve_contact(session, inbound)
        instance = await _channel_instance(session, inbound)
        conv = await _find_thread(session, inbound, contact)
        events: list[Event] = []
        routable = not inbound.auto_generated and inbound.kind is not InboundKind.EVENT
        if conv is not None and conv.status == ConversationStatus.RESOLVED.value:
            if routable and self._reopen_resolved:
                conv.status = ConversationStatus.QUEUED.value
                conv.assignee_id = None
                conv.queued_at = now
                conv.resolved_at = None
                await append(
                    session,
                    conv.id,
                    kind=InteractionKind.STATUS,
                    direction=Direction.INTERNAL,
                    channel=conv.channel,
                    actor_type=ActorType.SYSTEM,
                    payload={"status": "queued", "reason": "reopened"},
                )
                events.append(
                    Event("conversation.queued", {"id": conv.id}, rooms=(f"queue:{conv.queue_id}",))
                )
            elif routable:
                conv = None  # a new case for a new message on a closed one
        new_conv = conv is None
        if conv is None:
            queue_id, priority, matched = await _route(session, inbound, contact, instance)
            status = ConversationStatus.QUEUED if routable else ConversationStatus.RESOLVED
            conv = Conversation(
                id=new_id("conversation"),
                contact_id=contact.id,
                channel=inbound.channel.value,
                channel_instance_id=instance.id if instance else None,
                queue_id=queue_id,
                status=status.value,
                priority=priority,
                subject=(inbound.subject or None) and inbound.subject[:500],
                attributes={"rules": list(matched), "auto_generated": not routable}
                if matched or not routable
                else {},
                created_at=now,
                queued_at=now if routable else None,
                last_message_at=now,
                resolved_at=None if routable else now,
            )
            session.add(conv)
            await session.flush()
        elif conv.status == ConversationStatus.PENDING.value and routable:
            conv.status = (
                ConversationStatus.ASSIGNED.value
                if conv.assignee_id
                else ConversationStatus.QUEUED.value
            )
        conv.last_message_at = now
        kind = {
            InboundKind.MESSAGE: InteractionKind.MESSAGE,
            InboundKind.CALL: InteractionKind.CALL,
            InboundKind.EVENT: InteractionKind.EVENT,
        }[inbound.kind]
        row = await append(
            session,
            conv.id,
            kind=kind,
            direction=Direction.INBOUND,
            channel=inbound.channel.value,
            actor_type=ActorType.CONTACT,
            actor_id=contact.id,
            text=inbound.text,
            html=inbound.html,
            subject=inbound.subject,
            payload={
                "sender": str(inbound.sender),
                "sender_name": inbound.sender_name,
                "recipient": inbound.recipient,
                "channel_id": inbound.channel_id,
                "received_at": inbound.received_at.isoformat(),
                "auto_generated": inbound.auto_generated,
                "metadata": dict(inbound.metadata),
            },
            external_id=inbound.external_id,
            dedupe_key=key,
            at=now,
        )
        for att, sha in stored:
            session.add(
                AttachmentRecord(
                    id=new_id("attachment"),
                    interaction_id=row.id,
                    filename=att.filename[:255],
                    content_type=att.content_type[:255],
                    size=att.size,
                    sha256=sha,
                )
            )
        await self._remember_refs(session, inbound, conv.id)
        await session.flush()
        await session.refresh(row, ["attachments"])
        rooms = (f"conversation:{conv.id}", f"queue:{conv.queue_id}")
        events.append(Event("interaction.created", interaction_dict(row), rooms=rooms))
        if new_conv and routable:
            events.append(Event("conversation.queued", {"id": conv.id}, rooms=rooms))
        if new_contact:
            events.append(Event("contact.created", {"id": contact.id}))
        return _Outcome(IngestReceipt(row.id, conv.id, contact.id, created=True), events)

    @staticmethod
    async def _remember_refs(session: AsyncSession, inbound: Inbound, conv_id: str) -> None:
        """Record this item's own id so later replies that reference it thread here."""
        if inbound.channel not in (
            ChannelKind.EMAIL,
            ChannelKind.FAX,
            ChannelKind.VOICE,
            ChannelKind.SMS,
            ChannelKind.WEBCHAT,
        ):
            return
        exists = (
            await session.execute(
                select(ConversationRef.id).where(
                    ConversationRef.channel == inbound.channel.value,
                    ConversationRef.ref == inbound.external_id[:998],
                )
            )
        ).first()
        if exists is None:
            session.add(
                ConversationRef(
                    channel=inbound.channel.value,
                    ref=inbound.external_id[:998],
                    conversation_id=conv_id,
                )
            )
