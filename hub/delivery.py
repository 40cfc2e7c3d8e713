"""The delivery worker: sends queued replies through their channel, with retries.

Rows in ``outbound_deliveries`` are the source of truth. The worker wakes on a
``delivery.queued`` event or every few seconds, claims due rows, calls the channel's ``send``
and records the outcome. Transient failures back off exponentially (5 s → 10 min); permanent ones
and too many attempts end in ``failed``, visible in the timeline. A crash mid-send leaves the row
``sending``; on start such rows go back to ``pending`` (a channel's idempotency key stops a
double delivery where the provider supports one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import (
    Address,
    AddressKind,
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

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_REFERENCES = 30


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
            try:
                await self.drain()
            except Exception:
                log.exception("delivery pass failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)

    async def drain(self) -> int:
        """Send every due delivery once; returns how many were attempted."""
        async with self.services.sessions() as session, session.begin():
            due = (
                (
                    await session.execute(
                        select(OutboundDelivery.id)
                        .where(
                            OutboundDelivery.status == DeliveryStatus.PENDING.value,
                            OutboundDelivery.next_attempt_at <= utcnow(),
                        )
                        .order_by(OutboundDelivery.next_attempt_at)
                        .limit(100)
                    )
                )
                .scalars()
                .all()
            )
        for delivery_id in due:
            await self._attempt(delivery_id)
        return len(due)

    async def _attempt(self, delivery_id: str) -> None:
        async with self.services.sessions() as session, session.begin():
            claimed = await session.execute(
                update(OutboundDelivery)
                .where(
                    OutboundDelivery.id == delivery_id,
                    OutboundDelivery.status == DeliveryStatus.PENDING.value,
                )
                .values(status=DeliveryStatus.SENDING.value, attempts=OutboundDelivery.attempts + 1)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return  # another worker has it
            row = await session.get(OutboundDelivery, delivery_id)
            assert row is not None
            ix = await session.get(Interaction, row.interaction_id)
            assert ix is not None
        channel = self.channels.get(row.channel_instance_id or "") or self.channels.get(row.channel)
        channel_id = channel.channel_id if channel is not None else ""
        async with self.services.sessions() as session:
            if row.channel_instance_id:
                instance = await session.get(ChannelInstance, row.channel_instance_id)
                if instance is not None:
                    channel_id = instance.address  # mailbox, number or site key
            in_reply_to, references = await _thread_of(session, ix)
        status, error, external_id = DeliveryStatus.SENT, None, None
        if channel is None:
            status, error = DeliveryStatus.PENDING, f"no running {row.channel} channel"
        else:
            kind_s, _, value = str(ix.payload.get("to", "")).partition(":")
            outbound = Outbound(
                channel=ChannelKind(row.channel),
                channel_id=channel_id,
                conversation_id=ix.conversation_id,
                to=Address(AddressKind(kind_s), value),
                text=ix.text,
                html=ix.html,
                subject=ix.subject,
                idempotency_key=ix.id,
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
                log.exception("channel %s crashed while sending", row.channel)
                status, error = DeliveryStatus.PENDING, f"internal: {type(exc).__name__}"
        attempts = row.attempts + 1
        if status is DeliveryStatus.PENDING and attempts >= MAX_ATTEMPTS:
            status = DeliveryStatus.FAILED
        self.services.metrics.deliveries.labels(row.channel, status.value).inc()
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
                        channel=row.channel,
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
