"""Carry out the router's commands: persist them in one transaction, then say what to emit.

Every command is recorded in the conversation's interaction log with the router's reason
(candidates considered, why this agent won), so routing fairness can be audited afterwards.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from hub.actions.conversations import conversation_rooms
from hub.actions.log import append, insert_interactions, interaction_values
from hub.db.base import utcnow
from hub.db.models import Agent, Assignment, Conversation, Offer
from hub.dispatch.mapping import base_queue_id
from hub.domain import (
    ActorType,
    ConversationStatus,
    Direction,
    InteractionKind,
    OfferStatus,
)
from hub.events import Event
from hub.ids import new_id
from routing.commands import (
    Assign,
    Callback,
    Command,
    Escalate,
    Overflow,
    Rejected,
    Requeue,
    RevokeOffer,
    SendOffer,
    SetPresence,
    Voicemail,
)
from routing.model import Reason

log = logging.getLogger(__name__)

SOURCE = {"source": "dispatcher"}  # events we emit carry this so we never consume our own
WAITING = (ConversationStatus.QUEUED.value, ConversationStatus.OFFERED.value)


class StaleWork(Exception):
    """The router offered a conversation the DB no longer has waiting (resolved, assigned or
    gone since the event it was routed from). Nothing of the execution is written: the
    dispatcher rebuilds the router from the DB, which is the truth."""

    def __init__(self, conv_ids: list[str]) -> None:
        super().__init__(f"offer for {len(conv_ids)} conversation(s) no longer waiting: "
                         + ", ".join(conv_ids[:5]))  # fmt: skip
        self.conv_ids = conv_ids


def reason_dict(reason: Reason) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "text": reason.text,
        "considered": reason.considered,
        "candidates": [{"id": c.id, "key": list(c.key), "note": c.note} for c in reason.candidates],
    }


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _conv_event(name: str, conv: Conversation, **extra: Any) -> Event:
    rooms = conversation_rooms(conv)
    return Event(
        name,
        {
            "id": conv.id,
            "status": conv.status,
            "queue_id": conv.queue_id,
            "assignee_id": conv.assignee_id,
            **extra,
        },
        rooms=rooms,
        meta=SOURCE,
    )


async def _log(
    session: AsyncSession,
    conv: Conversation,
    kind: InteractionKind,
    payload: dict[str, Any],
    text: str = "",
) -> None:
    await append(
        session,
        conv.id,
        kind=kind,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.SYSTEM,
        payload=payload,
        text=text,
    )


def _offer_event(cmd: SendOffer, conv: Conversation | Row[Any], why: dict[str, Any]) -> Event:
    return Event(
        "offer",
        {
            "offer_id": cmd.offer_id,
            "conversation_id": conv.id,
            "channel": conv.channel,
            "queue_id": conv.queue_id,
            "subject": conv.subject,
            "priority": conv.priority,
            "expires_at": _ts(cmd.expires_at).isoformat(),
            "reason": why,
        },
        rooms=(f"agent:{cmd.agent_id}",),
        meta=SOURCE,
    )


def _only_offers(commands: list[Command]) -> list[SendOffer] | None:
    """The offers, when ``commands`` are just offers (and refusals) on distinct conversations."""
    offers = [c for c in commands if isinstance(c, SendOffer)]
    if not offers or any(not isinstance(c, SendOffer | Rejected) for c in commands):
        return None
    return offers if len({o.work_id for o in offers}) == len(offers) else None


async def _send_offers(
    session: AsyncSession, offers: list[SendOffer], rejected: list[str]
) -> tuple[list[Event], list[str]]:
    """The hot path (new work meets ready agents): a fixed number of statements for any number
    of offers. One ``UPDATE ... RETURNING`` marks the conversations offered and takes each one's
    next ``seq`` atomically (as :func:`hub.actions.log.append` does), then one executemany each
    for the offers and their log entries. Only waiting conversations are updated: any other is
    stale work (:class:`StaleWork`), and the caller's transaction rolls back."""
    conn = await session.connection()
    table = cast(Table, Conversation.__table__)
    c = table.c
    rows = await conn.execute(
        update(table)
        .where(c.id.in_([o.work_id for o in offers]), c.status.in_(WAITING))
        .values(status=ConversationStatus.OFFERED.value, interaction_count=c.interaction_count + 1)
        .returning(c.id, c.interaction_count, c.channel, c.queue_id, c.subject, c.priority)
    )
    convs = {r.id: r for r in rows}
    stale = [o.work_id for o in offers if o.work_id not in convs]
    if stale:
        raise StaleWork(stale)
    now = utcnow()
    offer_rows: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    events: list[Event] = []
    for cmd in offers:
        conv = convs[cmd.work_id]
        why = reason_dict(cmd.reason)
        offer_rows.append(
            {
                "id": cmd.offer_id,
                "conversation_id": conv.id,
                "agent_id": cmd.agent_id,
                "status": OfferStatus.PENDING.value,
                "created_at": now,
                "expires_at": _ts(cmd.expires_at),
                "decided_at": None,
                "reason": why,
            }
        )
        entries.append(
            interaction_values(
                conv.id,
                conv.interaction_count,
                kind=InteractionKind.OFFER,
                direction=Direction.INTERNAL,
                channel=conv.channel,
                actor_type=ActorType.SYSTEM,
                payload={"offer_id": cmd.offer_id, "agent_id": cmd.agent_id, "reason": why},
                at=now,
            )
        )
        events.append(_offer_event(cmd, conv, why))
    if offer_rows:
        await conn.execute(insert(cast(Table, Offer.__table__)), offer_rows)
        await insert_interactions(conn, entries)
    return events, rejected


async def execute(session: AsyncSession, commands: list[Command]) -> tuple[list[Event], list[str]]:
    """Apply ``commands``; return the events to publish after commit and rejected offer ids.
    Raises :class:`StaleWork` (roll back, rebuild) when an offer's conversation is not waiting
    in the DB any more: the router may have been fed from an event the DB has overtaken."""
    offers = _only_offers(commands)
    if offers is not None:
        rejected_ids = [c.offer_id for c in commands if isinstance(c, Rejected)]
        return await _send_offers(session, offers, rejected_ids)
    events: list[Event] = []
    rejected: list[str] = []
    for cmd in commands:
        if isinstance(cmd, Rejected):
            rejected.append(cmd.offer_id)
            continue
        if isinstance(cmd, SetPresence):
            agent = await session.get(Agent, cmd.agent_id)
            if agent is not None:
                agent.presence = cmd.presence.value
                agent.presence_reason = cmd.presence_reason or None
                agent.presence_since = utcnow()
                events.append(
                    Event(
                        "agent.presence",
                        {
                            "id": agent.id,
                            "presence": agent.presence,
                            "presence_reason": agent.presence_reason,
                            "reason": reason_dict(cmd.reason),
                        },
                        rooms=(f"agent:{agent.id}", "supervisors"),
                        meta=SOURCE,
                    )
                )
            continue
        conv = await session.get(Conversation, cmd.work_id)
        if isinstance(cmd, SendOffer) and (conv is None or conv.status not in WAITING):
            raise StaleWork([cmd.work_id])
        if conv is None:
            log.warning("router command for unknown conversation %s ignored", cmd.work_id)
            continue
        why = reason_dict(cmd.reason)
        if isinstance(cmd, SendOffer):
            session.add(
                Offer(
                    id=cmd.offer_id,
                    conversation_id=conv.id,
                    agent_id=cmd.agent_id,
                    expires_at=_ts(cmd.expires_at),
                    reason=why,
                )
            )
            conv.status = ConversationStatus.OFFERED.value
            await _log(
                session,
                conv,
                InteractionKind.OFFER,
                {"offer_id": cmd.offer_id, "agent_id": cmd.agent_id, "reason": why},
            )
            events.append(_offer_event(cmd, conv, why))
        elif isinstance(cmd, RevokeOffer):
            expired = "expire" in cmd.reason.rule
            await session.execute(
                update(Offer)
                .where(Offer.id == cmd.offer_id, Offer.status == OfferStatus.PENDING.value)
                .values(
                    status=(OfferStatus.EXPIRED if expired else OfferStatus.REVOKED).value,
                    decided_at=utcnow(),
                )
            )
            if conv.status == ConversationStatus.OFFERED.value:
                conv.status = ConversationStatus.QUEUED.value
            await _log(
                session,
                conv,
                InteractionKind.OFFER,
                {
                    "offer_id": cmd.offer_id,
                    "agent_id": cmd.agent_id,
                    "outcome": "expired" if expired else "revoked",
                    "reason": why,
                },
            )
            events.append(
                Event(
                    "offer.revoked",
                    {"offer_id": cmd.offer_id, "conversation_id": conv.id, "reason": why},
                    rooms=(f"agent:{cmd.agent_id}",),
                    meta=SOURCE,
                )
            )
        elif isinstance(cmd, Assign):
            await session.execute(
                update(Offer)
                .where(Offer.id == cmd.offer_id)
                .values(status=OfferStatus.ACCEPTED.value, decided_at=utcnow())
            )
            conv.status = ConversationStatus.ASSIGNED.value
            conv.assignee_id = cmd.agent_id
            session.add(
                Assignment(id=new_id("assignment"), conversation_id=conv.id, agent_id=cmd.agent_id)
            )
            await _log(
                session,
                conv,
                InteractionKind.ASSIGNMENT,
                {
                    "offer_id": cmd.offer_id,
                    "agent_id": cmd.agent_id,
                    "wait_s": round(cmd.wait_s, 3),
                    "reason": why,
                },
            )
            events.append(_conv_event("conversation.assigned", conv, wait_s=cmd.wait_s))
        elif isinstance(cmd, Requeue):
            await session.execute(
                update(Assignment)
                .where(Assignment.conversation_id == conv.id, Assignment.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason="requeued")
            )
            conv.status = ConversationStatus.QUEUED.value
            conv.assignee_id = None
            await _log(
                session,
                conv,
                InteractionKind.STATUS,
                {"status": "queued", "from_agent": cmd.agent_id, "reason": why},
            )
            events.append(_conv_event("conversation.requeued", conv, from_agent=cmd.agent_id))
        elif isinstance(cmd, Overflow | Escalate):
            attrs = dict(conv.attributes)
            attrs["overflow_done"] = cmd.step + 1
            if isinstance(cmd, Escalate):
                attrs["escalated_to"] = {"queue_id": base_queue_id(cmd.queue_id), "tier": cmd.tier}
            conv.attributes = attrs
            await _log(
                session,
                conv,
                InteractionKind.EVENT,
                {
                    "overflow": {
                        "step": cmd.step,
                        "action": "escalate" if isinstance(cmd, Escalate) else cmd.action.value,
                        "queue_id": cmd.queue_id,
                    },
                    "reason": why,
                },
            )
            events.append(_conv_event("conversation.overflow", conv, step=cmd.step))
        elif isinstance(cmd, Voicemail | Callback):
            what = "voicemail" if isinstance(cmd, Voicemail) else "callback"
            conv.status = ConversationStatus.PENDING.value
            conv.attributes = {**conv.attributes, "left_queue": what}
            await _log(
                session,
                conv,
                InteractionKind.EVENT,
                {"overflow": {"step": cmd.step, "action": what}, "reason": why},
            )
            events.append(_conv_event(f"voice.{what}", conv))
    return events, rejected
