"""The delivery worker: sends queued replies through their channel, with retries.

Rows in ``outbound_deliveries`` are the source of truth. The worker wakes on a
``delivery.queued`` event or every few seconds, claims due rows, calls the channel's ``send``
and records the outcome. Transient failures back off exponentially (5 s → 10 min); permanent ones
and too many attempts end in ``failed``, visible in the timeline. A crash mid-send leaves the row
``sending``; on start such rows go back to ``pending`` (a channel's idempotency key stops a
double delivery where the provider supports one). A reply's attachments are read back from the
media store on every attempt; one whose bytes are gone fails the delivery at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import (
    Address,
    AddressKind,
    Attachment,
    Channel,
    ChannelError,
    ChannelKind,
    Outbound,
    PermanentChannelError,
)
from hub.db.base import utcnow
from hub.db.models import ChannelInstance, ConversationRef, Interaction, OutboundDelivery
from hub.domain import DeliveryStatus, Direction, InteractionKind
from hub.events import Event
from hub.services import Services
from recorder.media import MediaError, MediaStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_REFERENCES = 30
BATCH = 100  # deliveries claimed per pass
# Channels whose replies thread by the ids the conversation is known by (mail headers).
THREADED_CHANNELS = frozenset({"email"})


@dataclass(slots=True)
class _Job:
    """One claimed delivery and what its send needs."""

    delivery_id: str
    ix: Interaction
    kind: str  # the channel kind (``email``, ``webchat``...)
    channel: Channel | None  # the running adapter, if any
    channel_id: str  # mailbox, number or site key
    attempts: int  # including this one
    in_reply_to: str | None = None
    references: tuple[str, ...] = field(default=())


def backoff_s(attempt: int) -> float:
    return float(min(600, 5 * 2 ** max(0, attempt - 1)))


async def _thread_of(session: AsyncSession, ix: Interaction) -> tuple[str | None, tuple[str, ...]]:
    """What a reply answers: the customer's latest message id, and every id the conversation
    is known by on this channel (oldest first, capped) so mail clients thread it."""
    latest = (
        await session.execute(
            select(Interaction.external_id)
            .where(
                Interaction.conversation_id == ix.conversation_id,
                Interaction.direction == Direction.INBOUND.value,
                Interaction.kind == InteractionKind.MESSAGE.value,
                Interaction.external_id.is_not(None),
            )
            .order_by(Interaction.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    refs = (
        await session.execute(
            select(ConversationRef.ref)
            .where(
                ConversationRef.conversation_id == ix.conversation_id,
                ConversationRef.channel == ix.channel,
            )
            .order_by(ConversationRef.id)
            .limit(MAX_REFERENCES)
        )
    ).scalars()
    return latest, tuple(refs)


class DeliveryWorker:
    def __init__(self, services: Services, channels: dict[str, Channel]) -> None:
        self.services = services
        self.channels = channels  # by channel instance id, plus "<kind>" as a default per kind
        self._wake = asyncio.Event()

    async def on_event(self, event: Event) -> None:
        if event.name == "delivery.queued":
            self._wake.set()

    async def recover(self) -> None:
        async with self.services.sessions() as session, session.begin():
            await session.execute(
                update(OutboundDelivery)
                .where(OutboundDelivery.status == DeliveryStatus.SENDING.value)
                .values(status=DeliveryStatus.PENDING.value)
            )

    async def run(self) -> None:
        await self.recover()
        while True:
            # cleared before the pass, not after: a reply queued while a pass runs must start
            # the next pass at once, not wait for the 2 s poll
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("delivery pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)

    async def drain(self) -> int:
        """Send every due delivery once; returns how many were attempted."""
        jobs = await self._claim()
        for job in jobs:
            try:
                await self._send(job)
            except Exception:  # the rest of the claimed batch must still go out
                log.exception("delivery %s failed; left `sending`, requeued on the next start",
                              job.delivery_id)
        return len(jobs)

    async def _claim(self) -> list[_Job]:
        """Claim up to ``BATCH`` due rows and read what their sends need, in one transaction.

        Why a batch: under chat load replies arrive many per second, and a transaction (plus
        a read session) per reply kept the delivery worker queueing for the SQLite write lock
        behind the chat intake; one claim for the batch costs a fixed handful of statements.
        Only email threads by message ids, so only email rows read them (after the commit, so
        the write lock is not held for them).
        """
        async with self.services.sessions() as session, session.begin():
            due = (
                await session.execute(
                    select(OutboundDelivery.id)
                    .where(
                        OutboundDelivery.status == DeliveryStatus.PENDING.value,
                        OutboundDelivery.next_attempt_at <= utcnow(),
                    )
                    .order_by(OutboundDelivery.next_attempt_at)
                    .limit(BATCH)
                )
            ).scalars().all()
            if not due:
                return []
            claimed = (
                await session.execute(
                    update(OutboundDelivery)
                    .where(
                        OutboundDelivery.id.in_(due),
                        OutboundDelivery.status == DeliveryStatus.PENDING.value,
                    )
                    .values(
                        status=DeliveryStatus.SENDING.value,
                        attempts=OutboundDelivery.attempts + 1,
                    )
                    .returning(
                        OutboundDelivery.id,
                        OutboundDelivery.interaction_id,
                        OutboundDelivery.channel,
                        OutboundDelivery.channel_instance_id,
                        OutboundDelivery.attempts,
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not claimed:
                return []  # another worker has them
            ixs = {
                ix.id: ix
                for ix in (
                    await session.execute(
                        select(Interaction).where(
                            Interaction.id.in_({c.interaction_id for c in claimed})
                        )
                    )
                ).scalars()
            }
            wanted = {c.channel_instance_id for c in claimed if c.channel_instance_id}
            addresses: dict[str, str] = {}
            if wanted:
                addresses = {
                    i: a
                    for i, a in await session.execute(
                        select(ChannelInstance.id, ChannelInstance.address).where(
                            ChannelInstance.id.in_(wanted)
                        )
                    )
                }
        jobs: list[_Job] = []
        order = {d: n for n, d in enumerate(due)}
        for c in sorted(claimed, key=lambda c: order[c.id]):  # oldest due first, as claimed
            channel = self.channels.get(c.channel_instance_id or "") or self.channels.get(c.channel)
            channel_id = channel.channel_id if channel is not None else ""
            jobs.append(
                _Job(
                    c.id,
                    ixs[c.interaction_id],
                    c.channel,
                    channel,
                    addresses.get(c.channel_instance_id or "", channel_id),
                    c.attempts,
                )
            )
        threaded = [job for job in jobs if job.kind in THREADED_CHANNELS]
        if threaded:
            async with self.services.sessions() as session:
                for job in threaded:
                    job.in_reply_to, job.references = await _thread_of(session, job.ix)
        return jobs

    async def _files(self, ix: Interaction) -> tuple[tuple[Attachment, ...], str | None]:
        """The reply's attachments with their bytes from the media store, and the name of the
        first one whose bytes are gone (then the reply can never be sent as written)."""
        if not ix.attachments:
            return (), None
        media = self.services.extras.get("media")
        files: list[Attachment] = []
        for rec in ix.attachments:
            try:
                if not isinstance(media, MediaStore):
                    raise MediaError("no media store")
                data = await media.read(rec.sha256)
            except MediaError:
                log.error("delivery of %s: attachment %s (%s) is not in the media store",
                          ix.id, rec.id, rec.sha256[:12])
                return (), rec.filename
            files.append(Attachment(rec.filename, rec.content_type, data))
        return tuple(files), None

    async def _send(self, job: _Job) -> None:
        delivery_id, ix, channel_kind, channel = job.delivery_id, job.ix, job.kind, job.channel
        attempts, channel_id = job.attempts, job.channel_id
        in_reply_to, references = job.in_reply_to, job.references
        status, error, external_id = DeliveryStatus.SENT, None, None
        files, missing = await self._files(ix)
        if channel is None:
            status, error = DeliveryStatus.PENDING, f"no running {channel_kind} channel"
        elif missing:
            status, error = DeliveryStatus.FAILED, f"attachment_missing: {missing}"
        else:
            kind_s, _, value = str(ix.payload.get("to", "")).partition(":")
            outbound = Outbound(
                channel=ChannelKind(channel_kind),
                channel_id=channel_id,
                conversation_id=ix.conversation_id,
                to=Address(AddressKind(kind_s), value),
                text=ix.text,
                html=ix.html,
                subject=ix.subject,
                idempotency_key=ix.id,
                attachments=files,
                author_name=ix.payload.get("author_name"),
                in_reply_to=in_reply_to,
                references=references,
                metadata={"message_id": ix.id},
            )
            try:
                result = await channel.send(outbound)
                external_id = result.external_id
            except PermanentChannelError as exc:
                status, error = DeliveryStatus.FAILED, f"{exc.code}: {exc}"
            except ChannelError as exc:
                status, error = DeliveryStatus.PENDING, f"{exc.code}: {exc}"
            except Exception as exc:  # a bug in a channel must not kill the worker
                log.exception("channel %s crashed while sending", channel_kind)
                status, error = DeliveryStatus.PENDING, f"internal: {type(exc).__name__}"
        if status is DeliveryStatus.PENDING and attempts >= MAX_ATTEMPTS:
            status = DeliveryStatus.FAILED
        self.services.metrics.deliveries.labels(channel_kind, status.value).inc()
        async with self.services.sessions() as session, session.begin():
            await session.execute(
                update(OutboundDelivery)
                .where(
                    OutboundDelivery.id == delivery_id,
                    # a receipt may already have made it final: never downgrade it
                    OutboundDelivery.status.not_in(
                        [DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value]
                    ),
                )
                .values(
                    status=status.value,
                    last_error=error,
                    external_id=external_id,
                    next_attempt_at=utcnow() + timedelta(seconds=backoff_s(attempts)),
                )
            )
            if external_id:
                session.add(
                    ConversationRef(
                        channel=channel_kind,
                        ref=external_id[:998],
                        conversation_id=ix.conversation_id,
                    )
                )
        if error:
            log.warning("delivery %s: %s", delivery_id, error)
        await self.services.bus.publish(
            [
                Event(
                    "delivery.status",
                    {
                        "interaction_id": ix.id,
                        "conversation_id": ix.conversation_id,
                        "status": status.value,
                        "error": error,
                    },
                    rooms=(f"conversation:{ix.conversation_id}",),
                )
            ]
        )
