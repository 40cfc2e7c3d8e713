"""The database side of voice orchestration: which call a conversation is, and its call facts.

A voice conversation knows its call through its latest ``CALL`` interaction: for an inbound call
the one ingest stored (``external_id`` = the caller channel's unique id in Asterisk), for a
click-to-call the one :func:`open_outbound_call` wrote (``external_id`` = the outbound call
id). Ring attempts, hold and hang-up requests are appended as ``event`` interactions (payload
``{"call": {...}}``) so the timeline tells the whole call; the end of a call resolves the
conversation with the outcome and the caller's wait.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import AddressKind
from hub.actions.conversations import conversation_event, conversation_rooms
from hub.actions.log import append, interaction_dict
from hub.db.base import utcnow
from hub.db.models import (
    Agent,
    Assignment,
    Contact,
    ContactAddress,
    Conversation,
    ConversationRef,
    Interaction,
)
from hub.domain import ActorType, ConversationStatus, Direction, InteractionKind
from hub.errors import Conflict, NotFound
from hub.events import Event
from hub.ids import new_id


def _latest_call(conversation_id: str) -> Select[str | None]:
    return (
        select(Interaction.external_id)
        .where(
            Interaction.conversation_id == conversation_id,
            Interaction.kind == InteractionKind.CALL.value,
        )
        .order_by(Interaction.seq.desc())
        .limit(1)
    )


async def call_id_of(session: AsyncSession, conversation_id: str) -> str | None:
    """The Asterisk channel id of the conversation's latest call (None: not a call)."""
    return (await session.execute(_latest_call(conversation_id))).scalar_one_or_none()


async def ring_lookup(
    session: AsyncSession, agent_id: str, conversation_id: str
) -> tuple[str | None, Conversation | None, str | None]:
    """(the agent's voice endpoint, the conversation, its latest call id) in one statement:
    this runs between the router's offer and the agent's phone ringing, where every database
    round trip is ring time."""
    endpoint = select(Agent.voice_endpoint).where(Agent.id == agent_id).scalar_subquery()
    row = (
        await session.execute(
            select(Conversation, endpoint, _latest_call(conversation_id).scalar_subquery())
            .where(Conversation.id == conversation_id)
        )
    ).one_or_none()
    if row is None:  # no conversation: only the endpoint matters (for the decline's reason)
        agent = await session.get(Agent, agent_id)
        return (agent.voice_endpoint if agent is not None else None), None, None
    return row[1], row[0], row[2]


async def record_call_event(
    session: AsyncSession,
    conv: Conversation,
    call: dict[str, Any],
    *,
    actor_type: ActorType = ActorType.SYSTEM,
    actor_id: str | None = None,
    text: str = "",
) -> Event:
    """Append one call fact (ring outcome, hold, hang-up request) to the timeline; ``text`` is
    the line the inbox shows for it."""
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.EVENT,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=actor_type,
        actor_id=actor_id,
        text=text,
        payload={"call": call},
    )
    await session.flush()
    return Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv))


async def resolve_ended_call(
    session: AsyncSession, conv: Conversation, *, outcome: str, end: dict[str, Any]
) -> list[Event]:
    """Resolve ``conv`` because its call is over; ``outcome`` is ``abandoned`` (the caller left
    before an agent answered) or ``completed``. No-op for an already resolved conversation."""
    if conv.status == ConversationStatus.RESOLVED.value:
        return []
    previous = conv.assignee_id
    conv.status = ConversationStatus.RESOLVED.value
    conv.resolved_at = utcnow()
    facts = {
        "outcome": outcome,
        "end_reason": end.get("reason"),
        "wait_s": end.get("wait_s"),
        "queue": end.get("queue"),
    }
    conv.attributes = {**conv.attributes, "call": facts}
    await session.execute(
        update(Assignment)
        .where(Assignment.conversation_id == conv.id, Assignment.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=f"call_{outcome}")
    )
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.STATUS,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.SYSTEM,
        payload={"status": ConversationStatus.RESOLVED.value, "reason": outcome, **facts},
    )
    await session.flush()
    return [
        Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv)),
        conversation_event("conversation.resolved", conv, previous_assignee=previous),
    ]


async def contact_for_number(
    session: AsyncSession, number: str, contact_id: str | None
) -> Contact:
    """The contact a click-to-call goes to. With ``contact_id`` the (E.164) number must be one of
    that contact's phone addresses; without it the number's contact, created if unknown."""
    owner = (
        await session.execute(
            select(ContactAddress).where(
                ContactAddress.kind == AddressKind.PHONE.value, ContactAddress.value == number
            )
        )
    ).scalar_one_or_none()
    if contact_id is not None:
        contact = await session.get(Contact, contact_id)
        while contact is not None and contact.merged_into_id:
            contact = await session.get(Contact, contact.merged_into_id)
        if contact is None:
            raise NotFound(f"contact {contact_id} not found")
        if owner is None or owner.contact_id != contact.id:
            raise Conflict("that number is not one of the contact's phone numbers",
                           code="number_not_of_contact", data={"field": "number"})  # fmt: skip
        return contact
    if owner is not None:
        found = await session.get(Contact, owner.contact_id)
        assert found is not None
        return found
    contact = Contact(id=new_id("contact"))
    session.add(contact)
    session.add(ContactAddress(id=new_id("address"), contact_id=contact.id,
                               kind=AddressKind.PHONE.value, value=number))  # fmt: skip
    await session.flush()
    return contact


async def open_outbound_call(
    session: AsyncSession,
    *,
    contact: Contact,
    instance_id: str | None,
    queue_id: str | None,
    agent: Agent,
    number: str,
    call_id: str,
) -> tuple[Conversation, list[Event]]:
    """The conversation of a click-to-call: assigned to the dialing agent from the start (so the
    router counts the call against their voice capacity), its first timeline item the ``call``
    (outbound, ``external_id`` = the call id, which is how :func:`call_id_of` finds it)."""
    now = utcnow()
    conv = Conversation(
        id=new_id("conversation"), contact_id=contact.id, channel="voice",
        channel_instance_id=instance_id, queue_id=queue_id,
        status=ConversationStatus.ASSIGNED.value, assignee_id=agent.id,
        attributes={"call": {"direction": "outbound", "number": number}},
        created_at=now, queued_at=None, last_message_at=now,
    )  # fmt: skip
    session.add(conv)
    await session.flush()  # the rows below reference it
    session.add(Assignment(id=new_id("assignment"), conversation_id=conv.id, agent_id=agent.id))
    session.add(ConversationRef(channel="voice", ref=call_id, conversation_id=conv.id))
    await session.flush()
    row = await append(
        session, conv.id, kind=InteractionKind.CALL, direction=Direction.OUTBOUND,
        channel="voice", actor_type=ActorType.AGENT, actor_id=agent.id, external_id=call_id,
        text=f"Outbound call to {number}: ringing {agent.display_name}'s phone first",
        payload={"call": {"event": "dialing", "direction": "outbound", "number": number,
                          "agent_id": agent.id, "endpoint": agent.voice_endpoint}},
    )  # fmt: skip
    await session.flush()
    rooms = conversation_rooms(conv)
    return conv, [
        Event("interaction.created", interaction_dict(row), rooms=rooms),
        conversation_event("conversation.assigned", conv),
    ]
