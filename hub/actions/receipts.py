"""Delivery reports: a channel's receipt for a reply updates that reply's delivery status.

A channel reports receipts as ``Inbound(kind=EVENT)`` with ``metadata["event"] ==
"delivery_report"``, ``message_id`` (the ``SendResult.external_id`` its ``send`` returned),
``status`` (queued | sent | delivered | failed) and optionally ``idempotency_key`` (the
interaction id the delivery worker sent as the key). Ingest records the receipt in the timeline
as usual and, in the same transaction, calls :func:`apply_delivery_report` to move the matching
``outbound_deliveries`` row forward; a ``delivery.status`` event follows after commit.

Rules, because receipts arrive late, twice and out of order:
- ``delivered`` and ``failed`` are final; a later ``sent`` or ``queued`` never undoes them.
- ``queued`` changes nothing (the outbox already says at least ``sent``).
- A receipt that arrives while its reply is still ``sending`` (the gateway answered faster than
  the delivery worker recorded the send, so the row may not even carry the message id yet)
  raises :class:`TransientChannelError`: the transaction rolls back, the route answers 503 and
  the gateway retries the receipt a moment later, instead of the worker's "sent" overwriting
  it or the receipt missing its row.
- A receipt matching no reply (a keyword confirmation, a message sent before a restore) is only
  recorded.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Inbound, InboundKind, TransientChannelError
from hub.db.base import utcnow
from hub.db.models import Interaction, OutboundDelivery
from hub.domain import DeliveryStatus
from hub.events import Event

log = logging.getLogger(__name__)

DELIVERY_REPORT = "delivery_report"
FINAL = frozenset({DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value})
IN_FLIGHT = timedelta(seconds=60)
REPORTED = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}


def is_delivery_report(inbound: Inbound) -> bool:
    return inbound.kind is InboundKind.EVENT and inbound.metadata.get("event") == DELIVERY_REPORT


async def _find(session: AsyncSession, inbound: Inbound) -> OutboundDelivery | None:
    message_id = str(inbound.metadata.get("message_id") or "")
    channel = inbound.channel.value
    if message_id:
        row = (
            await session.execute(
                select(OutboundDelivery)
                .where(
                    OutboundDelivery.channel == channel,
                    OutboundDelivery.external_id == message_id[:998],
                )
                .limit(1)
            )
        ).scalar_one_or_none()
        if row is not None:
            return row
    key = inbound.metadata.get("idempotency_key")
    if isinstance(key, str) and key:  # the worker sends the interaction id as the key
        return (
            await session.execute(
                select(OutboundDelivery).where(
                    OutboundDelivery.channel == channel, OutboundDelivery.interaction_id == key
                )
            )
        ).scalar_one_or_none()
    return None


async def _send_in_flight(session: AsyncSession, inbound: Inbound) -> bool:
    """Whether a reply on this medium is being handed to its gateway right now: a receipt can
    outrun the worker recording the gateway's message id. Rows stuck ``sending`` (a crashed
    process) stop counting after :data:`IN_FLIGHT`, so unmatched receipts are never held off
    for long."""
    since = utcnow() - IN_FLIGHT
    found = (
        await session.execute(
            select(OutboundDelivery.id)
            .where(
                OutboundDelivery.channel == inbound.channel.value,
                OutboundDelivery.status == DeliveryStatus.SENDING.value,
                OutboundDelivery.updated_at > since,
            )
            .limit(1)
        )
    ).first()
    return found is not None


def _error(inbound: Inbound) -> str:
    md = inbound.metadata
    parts = [str(md[k]) for k in ("error_code", "detail") if md.get(k)]
    return "delivery_failed: " + (" ".join(parts) or f"gateway status {md.get('raw_status')}")


async def apply_delivery_report(session: AsyncSession, inbound: Inbound) -> list[Event]:
    """Move the reply's delivery row forward; return the events to publish after commit."""
    wanted = REPORTED.get(str(inbound.metadata.get("status")))
    row = await _find(session, inbound)
    if row is None:
        if await _send_in_flight(session, inbound):
            raise TransientChannelError("a reply is being handed over; retry the receipt")
        log.info("delivery report %s matches no reply; recorded only", inbound.external_id[:80])
        return []
    if row.status == DeliveryStatus.SENDING.value:
        raise TransientChannelError("the reply is still being handed over; retry the receipt")
    if wanted is None or row.status in FINAL or row.status == wanted.value:
        return []
    row.status = wanted.value
    if wanted is DeliveryStatus.FAILED:
        row.last_error = _error(inbound)
    ix = await session.get(Interaction, row.interaction_id)
    assert ix is not None
    log.info("delivery %s: %s by receipt", row.id, wanted.value)
    return [
        Event(
            "delivery.status",
            {
                "interaction_id": ix.id,
                "conversation_id": ix.conversation_id,
                "status": wanted.value,
                "error": row.last_error if wanted is DeliveryStatus.FAILED else None,
            },
            rooms=(f"conversation:{ix.conversation_id}",),
        )
    ]
