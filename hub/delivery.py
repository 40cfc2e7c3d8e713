"""The delivery worker: sends queued replies through their channel, with retries.

Rows in ``outbound_deliveries`` are the source of truth. The worker wakes on a
``delivery.queued`` event or every few seconds, claims due rows, calls the channel's ``send``
and records the outcome. Transient failures back off exponentially (5 s → 10 min); permanent ones
and too many attempts end in ``failed``, visible in the timeline. A crash mid-send leaves the row
``sending``; on start such rows go back to ``pending`` (a channel's idempotency key stops a
double delivery where the provider supports one). A reply's attachments are read back from the
media store on every attempt; one whose bytes are gone fails the delivery at once.

A pass claims its due rows with one ``UPDATE ... RETURNING`` and loads what their sends need
in one read session. Chat outcomes are recorded together, at least every ``RECORD_EVERY_S``
(a crash re-sends at most that much, and the widget merges a message it already has by id):
under chat load a transaction per reply, each waiting for the SQLite write lock and the busy
event loop, fell seconds behind. An email, SMS or fax outcome is recorded as soon as it is
out, so a crash re-sends at most the one in flight. The claim and each record are sync units on
the hub's shared writer (:func:`hub.actions.batch_writer.shared_writer`): on SQLite they hold
the write lock, which every visitor's ack also waits for, for well under a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
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
from hub.actions.batch_writer import shared_writer
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
RECORD_EVERY_S = 1.0  # chat outcomes of a long pass are committed at least this often
# Channels whose client merges a re-sent message by its id (the widget's upsert), so a crash
# that re-sends a pass's worth of them shows nothing twice; other channels record each send.
BATCHED_CHANNELS = frozenset({"webchat"})
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


@dataclass(frozen=True, slots=True)
class _Outcome:
    job: _Job
    status: DeliveryStatus
    error: str | None
    external_id: str | None


_DELIVERIES = cast(Table, OutboundDelivery.__table__)
_D = _DELIVERIES.c
# one executemany for every outcome of a pass (bind names differ from column names, as Core
# requires for an UPDATE's own columns); a receipt may already have made a row final: never
# downgrade it
_RECORD = (
    update(_DELIVERIES)
    .where(
        _D.id == bindparam("b_id"),
        _D.status != DeliveryStatus.DELIVERED.value,  # not NOT IN: no lists in executemany
        _D.status != DeliveryStatus.FAILED.value,
    )
    .values(
        status=bindparam("b_status"),
        last_error=bindparam("b_error"),
        external_id=bindparam("b_external_id"),
        next_attempt_at=bindparam("b_next", type_=_D.next_attempt_at.type),
        updated_at=bindparam("b_now", type_=_D.updated_at.type),
    )
)


# the claim: due rows become ``sending`` (the due subquery is added per pass: it reads the clock)
_CLAIM = (
    update(_DELIVERIES)
    .where(_D.status == DeliveryStatus.PENDING.value)
    .values(status=DeliveryStatus.SENDING.value, attempts=_D.attempts + 1)
    .returning(
        _D.id,
        _D.interaction_id,
        _D.channel,
        _D.channel_instance_id,
        _D.attempts,
        _D.next_attempt_at,
    )
)


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
        # claim and record are a few Core statements each: on SQLite they run as one short
        # unit on the writer's connection instead of holding the write lock across hops
        self._writer = shared_writer(services.sessions, services.extras)

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
        done: list[_Outcome] = []
        since = time.monotonic()
        for job in jobs:
            try:
                done.append(await self._attempt(job))
            except Exception:  # the rest of the claimed batch must still go out
                log.exception(
                    "delivery %s failed; left `sending`, requeued on the next start",
                    job.delivery_id,
                )
            # a chat message re-sent after a crash is merged by id in the widget; an email,
            # SMS or fax is not, so those are recorded as soon as they are out
            if done and (
                job.kind not in BATCHED_CHANNELS or time.monotonic() - since >= RECORD_EVERY_S
            ):
                await self._record(done)
                done, since = [], time.monotonic()
        if done:
            await self._record(done)
        return len(jobs)

    async def _claim(self) -> list[_Job]:
        """Claim up to ``BATCH`` due rows in one statement, then read what their sends need.

        Only the claim holds the write lock; the reads run after its commit (the rows are
        ours by then). Only email threads by message ids, so only email rows read them.
        """

        def claim(conn: Connection) -> list[Row[Any]]:
            due = (
                select(_D.id)
                .where(
                    _D.status == DeliveryStatus.PENDING.value,
                    _D.next_attempt_at <= utcnow(),
                )
                .order_by(_D.next_attempt_at)
                .limit(BATCH)
            )
            return list(conn.execute(_CLAIM.where(_D.id.in_(due.scalar_subquery()))).all())

        claimed = await self._writer.run(claim)
        if not claimed:
            return []  # nothing due, or another worker has them
        async with self.services.sessions() as session:
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
            # oldest due first, as claimed (RETURNING has no order of its own)
            for c in sorted(claimed, key=lambda c: (c.next_attempt_at, c.id)):
                channel = self.channels.get(c.channel_instance_id or "") or self.channels.get(
                    c.channel
                )
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
            for job in jobs:
                if job.kind in THREADED_CHANNELS:
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
                log.error(
                    "delivery of %s: attachment %s (%s) is not in the media store",
                    ix.id,
                    rec.id,
                    rec.sha256[:12],
                )
                return (), rec.filename
            files.append(Attachment(rec.filename, rec.content_type, data))
        return tuple(files), None

    async def _attempt(self, job: _Job) -> _Outcome:
        """Hand one delivery to its channel; the outcome is recorded by :meth:`_record`."""
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
        if error:
            log.warning("delivery %s: %s", delivery_id, error)
        return _Outcome(job, status, error, external_id)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """Record a pass's outcomes in one transaction, then tell the timelines."""
        now = utcnow()
        params: list[dict[str, Any]] = [
            {
                "b_id": o.job.delivery_id,
                "b_status": o.status.value,
                "b_error": o.error,
                "b_external_id": o.external_id,
                "b_next": now + timedelta(seconds=backoff_s(o.job.attempts)),
                "b_now": now,
            }
            for o in outcomes
        ]
        refs = [
            {
                "channel": o.job.kind,
                "ref": o.external_id[:998],
                "conversation_id": o.job.ix.conversation_id,
            }
            for o in outcomes
            if o.external_id
        ]

        def record(conn: Connection) -> None:
            conn.execute(_RECORD, params)
            if refs:  # a resend after a crash finds its ref already there
                insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                conn.execute(
                    insert(ConversationRef).on_conflict_do_nothing(
                        index_elements=["channel", "ref"]
                    ),
                    refs,
                )

        await self._writer.run(record)
        await self.services.bus.publish(
            [
                Event(
                    "delivery.status",
                    {
                        "interaction_id": o.job.ix.id,
                        "conversation_id": o.job.ix.conversation_id,
                        "status": o.status.value,
                        "error": o.error,
                    },
                    rooms=(f"conversation:{o.job.ix.conversation_id}",),
                )
                for o in outcomes
            ]
        )
