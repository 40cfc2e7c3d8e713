"""Ingest: one normalized :class:`~channels.base.Inbound` becomes stored, threaded, routed work.

Everything happens in one transaction: dedupe on ``(channel, channel_id, external_id)``, resolve
or create the contact from the sender address, thread into a conversation (explicit references
first, then the contact's open conversation on that channel), decide queue and priority from the
routing rules, append the interaction. Events are published only after the commit.

Concurrency: two deliveries of the same message, or two first messages from one new address, may
race. Unique constraints (``interactions.dedupe_key``, ``contact_addresses(kind, value)``) make the
loser fail at flush; the transaction is retried and then finds the winner's rows. So the same
message is stored exactly once and an address always maps to one contact.

Group commit: calls that arrive together share one transaction (:mod:`hub.batching`). The common
shapes (no thread references, not a delivery report) are written by
:mod:`hub.actions.intake_batch` with a fixed number of statements per batch, which decides each
item in arrival order against the batch's own rows, so the outcome is the one of ingesting them
one after another; anything else, and any batch that fails, goes through the one-item path below.
Each caller returns after the commit holding its item and publishes only its own events.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelKind, Inbound, InboundKind, IngestReceipt
from hub.actions.batch_writer import writer_for
from hub.actions.intake_batch import BatchItem, eligible, ingest_batch
from hub.actions.log import append, interaction_dict
from hub.actions.queued import queued_event
from hub.actions.receipts import apply_delivery_report, is_delivery_report
from hub.actions.routing_catalog import CatalogCache
from hub.batching import Batcher
from hub.db.base import utcnow
from hub.db.engine import SessionFactory
from hub.db.models import (
    AttachmentRecord,
    Contact,
    ContactAddress,
    Conversation,
    ConversationRef,
    Interaction,
)
from hub.domain import OPEN_STATUSES, ActorType, ConversationStatus, Direction, InteractionKind
from hub.events import Event, EventBus
from hub.ids import new_id

log = logging.getLogger(__name__)

MediaPut = Callable[[bytes, str], Awaitable[str]]  # (data, content_type) -> sha256 key

CONVERSATION_REF_PREFIX = "conversation:"  # a thread ref naming a conversation id directly

# Channels whose items return from ingest once committed, their events posted to the bus (out in
# the same loop tick, in order; hub.events) rather than published before the return. Why web
# chat: the widget's ack ("stored") goes out when ingest returns, and publishing first made it
# wait for the fan-out of its item and of every item before it in the same batch (~20 µs each),
# and, for a visitor's first message, for the dispatcher, whose listener returns only once the
# new conversation is routed and that is written. The other channels' callers (and their tests)
# rely on the dispatcher having seen the item when ingest returns; nobody waits on their answer.
# It was switched off for a day: two clean CI runs lost a chat message's live update in a browser
# test right after it. The cause was the inbox page, not this (an older API answer drawn after a
# pushed event undid it; fixed in widget/inbox/js/app.js ``snapshot``, tests/widget/
# test_inbox_races.py). Measured gain: p99 98 -> 84 ms at 1,000 msg/s (bench/README.md, round 5).
ACK_BEFORE_FANOUT: frozenset[ChannelKind] = frozenset({ChannelKind.WEBCHAT})


# How long a busy ingest waits for more items before writing a small batch (hub.batching). At
# 1,000 chat msg/s batches held ~2.6 items and each cost ~1 ms (its transaction and statements);
# waiting 2 ms made them ~8 items, and in 4 alternating pairs (bench/chat.py defaults) the ack's
# p50 went 36 -> 13 ms, p99 110 -> 71 ms, the reply API's p50 153 -> 68 ms (medians; better in
# every pair; 4 ms was no better than 2). An idle hub, and a caller that sends one item at a
# time and waits for each, write at once.
INGEST_LINGER_S = 0.002


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
        self._catalogs = CatalogCache(sessions)
        self._batcher = Batcher(  # group commit; a call's item never waits (its ring time)
            self._run,
            linger_s=INGEST_LINGER_S,
            may_linger=lambda item: item.inbound.channel is not ChannelKind.VOICE,
        )
        self._writer = writer_for(sessions)  # where a batch's one transaction runs

    def invalidate_catalog(self) -> None:
        """Forget cached rules and channels (after this process changed them)."""
        self._catalogs.invalidate()

    async def refresh_catalog(self) -> None:
        """Keep the routing catalog fresh, forever (a task of the hub's lifespan; see
        :mod:`hub.actions.routing_catalog`)."""
        await self._catalogs.refresh()

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        """Store ``inbound``, then publish its events; returns once both are done (web chat:
        once stored, see :data:`ACK_BEFORE_FANOUT`).

        Group commit: calls that arrive while a batch is being written wait for the lock and
        the first of them writes everything pending in one transaction (see
        :mod:`hub.actions.intake_batch`). Each caller still returns only after the commit that
        holds its item, and publishes its own events after that commit.
        """
        stored = [
            (att, await self._media_put(att.data, att.content_type)) for att in inbound.attachments
        ]
        item = BatchItem(inbound, stored, dedupe_key(inbound))
        await self._batcher.submit(item)
        assert item.receipt is not None
        if inbound.channel in ACK_BEFORE_FANOUT:
            self._bus.post(item.events)
        else:
            await self._bus.publish(item.events)
        return item.receipt

    async def ingest_many(self, inbounds: list[Inbound], /) -> list[IngestReceipt | BaseException]:
        """A fetched batch in one call (``channels.email.batch_sink.BatchSink``).

        The same group commit as :meth:`__call__`, without a waiting task per item; outcomes
        come back in order, each item's receipt once committed (its events published after
        that commit, in order) or the error that kept it out.
        """
        items: list[BatchItem] = []
        for inbound in inbounds:  # a plain loop: an async comprehension is a coroutine per mail
            stored = [
                (att, await self._media_put(att.data, att.content_type))
                for att in inbound.attachments
            ] if inbound.attachments else []  # fmt: skip
            items.append(BatchItem(inbound, stored, dedupe_key(inbound)))
        errors = await self._batcher.submit_many(items)
        out: list[IngestReceipt | BaseException] = []
        events: list[Event] = []
        for item, error in zip(items, errors, strict=True):
            if error is not None:
                out.append(error)
                continue
            assert item.receipt is not None
            events += item.events
            out.append(item.receipt)
        await self._bus.publish(events)  # the items' events in item order, in one call
        return out

    async def _run(self, batch: list[BatchItem]) -> list[BaseException | None]:
        """Write a batch: the common shapes together, the rest (and a failed batch) one by one."""
        errors: dict[int, BaseException] = {}
        fast = [it for it in batch if eligible(it.inbound, is_delivery_report)]
        if fast:
            try:
                await self._run_fast(fast)
            except Exception as exc:
                if len(fast) == 1 and not isinstance(exc, IntegrityError | RuntimeError):
                    errors[id(fast[0])] = exc
                else:  # which item failed is unknown: each one alone decides its own fate
                    log.info(
                        "batch of %d failed (%s); ingesting one by one",
                        len(fast),
                        type(exc).__name__,
                    )
                for it in fast:
                    it.slow, it.receipt, it.events = True, None, []
        for it in batch:
            if it.receipt is not None or id(it) in errors:
                continue
            try:
                outcome = await self._ingest_single(it.inbound, list(it.stored))
                it.receipt, it.events = outcome.receipt, outcome.events
            except Exception as exc:
                errors[id(it)] = exc
        return [errors.get(id(it)) for it in batch]

    async def _run_fast(self, items: list[BatchItem]) -> None:
        last: IntegrityError | None = None
        for _attempt in range(3):
            for it in items:
                it.receipt, it.events, it.slow = None, [], False
            catalog = await self._catalogs.fresh()
            write = functools.partial(
                ingest_batch,
                items=items,
                route=catalog.route_by_channel,
                channels=catalog.channels,
                now=utcnow(),
            )
            try:
                await self._writer.run(write)
            except IntegrityError as exc:  # lost a race; the retry sees the winner's rows
                last = exc
                continue
            for it in items:  # left for the one-by-one path
                if it.slow:
                    it.receipt, it.events = None, []
            return
        raise RuntimeError("ingest batch kept conflicting") from last

    async def _ingest_single(self, inbound: Inbound, stored: list[Any]) -> _Outcome:
        last: IntegrityError | None = None
        for _attempt in range(4):
            try:
                return await self._ingest_once(inbound, stored)
            except IntegrityError as exc:  # lost a race; the retry sees the winner's rows
                last = exc
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
                log.info(
                    "duplicate inbound on %s ignored (interaction %s)", inbound.channel, existing.id
                )
                return _Outcome(
                    IngestReceipt(existing.id, conv.id, conv.contact_id, created=False), []
                )
            return await self._do_ingest(session, inbound, key, stored)

    async def _do_ingest(
        self, session: AsyncSession, inbound: Inbound, key: str, stored: list[Any]
    ) -> _Outcome:
        now = utcnow()
        contact, new_contact = await _resolve_contact(session, inbound)
        catalog = await self._catalogs.fresh(session)
        instance_id, channel_queue = catalog.channel(inbound)
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
                events.append(queued_event(conv, (f"queue:{conv.queue_id}",)))
            elif routable:
                conv = None  # a new case for a new message on a closed one
        new_conv = conv is None
        if conv is None:
            queue_id, priority, matched = catalog.route(
                inbound, contact.attributes, channel_queue
            )
            status = ConversationStatus.QUEUED if routable else ConversationStatus.RESOLVED
            conv = Conversation(
                id=new_id("conversation"),
                contact_id=contact.id,
                channel=inbound.channel.value,
                channel_instance_id=instance_id,
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
        row.attachments = [  # set directly: no reload round-trip for the event payload
            AttachmentRecord(
                id=new_id("attachment"),
                interaction_id=row.id,
                filename=att.filename[:255],
                content_type=att.content_type[:255],
                size=att.size,
                sha256=sha,
            )
            for att, sha in stored
        ]
        await self._remember_refs(session, inbound, conv.id)
        await session.flush()
        rooms = (f"conversation:{conv.id}", f"queue:{conv.queue_id}")
        events.append(Event("interaction.created", interaction_dict(row), rooms=rooms))
        if is_delivery_report(inbound):  # a receipt also moves its reply's delivery status
            events += await apply_delivery_report(session, inbound)
        if new_conv and routable:
            events.append(queued_event(conv, rooms))
        if new_contact:
            events.append(Event("contact.created", {"id": contact.id}))
        return _Outcome(IngestReceipt(row.id, conv.id, contact.id, created=True), events)

    @staticmethod
    async def _remember_refs(session: AsyncSession, inbound: Inbound, conv_id: str) -> None:
        """Record this item's own id so later replies that reference it thread here."""
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(ConversationRef)
            .values(
                channel=inbound.channel.value,
                ref=inbound.external_id[:998],
                conversation_id=conv_id,
            )
            .on_conflict_do_nothing(index_elements=["channel", "ref"])
        )
