"""Click-to-call in the hub: an agent dials a contact's number from the inbox.

Theory of operation
-------------------
:meth:`VoiceOutbound.click_to_call` checks everything that can be checked before a phone rings:
the number (E.164, and one of the contact's numbers when a contact is named), the voice line
(one with an ``outbound_endpoint`` trunk pattern, connected to Asterisk), the agent (has a
``voice_endpoint``, is logged in, has voice capacity and is not already on a call or being
offered one). Then, in one transaction, it opens the conversation (outbound voice, assigned to the
agent, first timeline item ``dialing``) and publishes ``conversation.assigned``: the dispatcher
restores that assignment in the router, so the call counts against the agent's voice capacity
and no other call is offered to them while it lasts. Only then is the agent's phone rung
(:class:`channels.voice.dialer.Dialer`): agent leg first, customer leg on answer.

The dialer's notices become timeline items (``agent_answered``, ``answered``, ``ended`` with the
reason and talk time); the end resolves the conversation with ``attributes.call.outcome``
(``completed``, or the failure: ``agent_noanswer``, ``customer_busy``, ``customer_noanswer``...),
which also ends the agent's assignment in the router (wrap-up). The recording goes through ingest
like an inbound call's (WAV into the media store, an ``event`` with the attachment, threaded into
the conversation by its id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import select

from channels.addresses import normalize_phone
from channels.base import (
    Address,
    AddressKind,
    Attachment,
    ChannelError,
    ChannelKind,
    Inbound,
    InboundKind,
    ParseError,
)
from channels.voice import VoiceChannel
from channels.voice.commands import RecordingReady
from channels.voice.dialer import Dialer, Recorded
from channels.voice.outbound import (
    AgentUp,
    CustomerUp,
    OutboundCall,
    OutboundEnded,
    OutNotice,
    customer_dial_string,
)
from channels.voice.snoop import Monitors
from hub.actions.ingest import CONVERSATION_REF_PREFIX
from hub.auth.sessions import Principal
from hub.channel_host import HostContext
from hub.db.base import utcnow
from hub.db.models import Agent, Conversation
from hub.domain import ActorType, ConversationStatus, Presence
from hub.errors import ApiError, Conflict, ValidationFailed
from hub.events import Event
from hub.ids import new_id
from hub.wiring.voice_store import (
    call_id_of,
    contact_for_number,
    open_outbound_call,
    record_call_event,
    resolve_ended_call,
)

log = logging.getLogger(__name__)

OUTBOUND_KEY = "voice.outbound"
Ended = Callable[[str, OutboundEnded], Awaitable[None]]  # (conversation id, how the call ended)


@dataclass(eq=False)
class Line:
    """One running voice channel row, as click-to-call and monitoring see it."""

    instance_id: str
    name: str
    address: str
    queue_id: str | None
    channel: VoiceChannel
    dialer: Dialer
    monitors: Monitors
    trunk: str | None  # outbound_endpoint pattern, e.g. PJSIP/{number}@trunk (None: no outbound)
    customer_ring_timeout: int = 30
    callback_attempts: int = 3  # queue_experience.callback_attempts (hub.wiring.voice_callbacks)


def _unavailable(message: str, code: str = "voice_unavailable") -> ApiError:
    return ApiError(message, code=code, status=503)


class VoiceOutbound:
    """One per hub process, shared by every voice row; see the module docstring."""

    def __init__(self, ctx: HostContext) -> None:
        self._ctx = ctx
        self._lines: dict[str, Line] = {}
        self._lock = asyncio.Lock()

    def add(self, line: Line) -> None:
        self._lines[line.instance_id] = line

    def remove(self, instance_id: str) -> Line | None:
        return self._lines.pop(instance_id, None)

    def line(self, instance_id: str | None) -> Line | None:
        return self._lines.get(instance_id or "")

    def lines(self) -> list[Line]:
        """Every running voice line of this process (for ``GET /api/voice/status``)."""
        return list(self._lines.values())

    def line_for_callback(self, instance_id: str | None) -> Line:
        """The line a callback dials out on: the conversation's own line when it has a trunk,
        else the one outbound line (Conflict when there is none, or several)."""
        own = self.line(instance_id)
        return own if own is not None and own.trunk else self._line_for(None)

    def _line_for(self, name: str | None) -> Line:
        lines = [ln for ln in self._lines.values() if ln.trunk]
        if name is not None:
            lines = [ln for ln in lines if name in (ln.name, ln.address)]
        if not lines:
            which = f" named {name!r}" if name else ""
            raise Conflict(f"no voice line{which} is set up for outbound calls "
                           "(config.outbound_endpoint)", code="outbound_not_configured")
        if len(lines) > 1:
            raise ValidationFailed("several voice lines can call out: name one in `line`",
                                   code="validation_error", data={"field": "line"})
        return lines[0]

    async def live(self, conv: Conversation) -> tuple[Line, OutboundCall] | None:
        """The line and live outbound call of ``conv``, if it is a click-to-call still going."""
        line = self.line(conv.channel_instance_id)
        if line is None or (conv.attributes.get("call") or {}).get("direction") != "outbound":
            return None
        async with self._ctx.sessions() as session:
            call_id = await call_id_of(session, conv.id)
        call = line.dialer.call(call_id or "")
        return (line, call) if call is not None else None

    # --- starting a call ----------------------------------------------------------------------

    async def click_to_call(self, who: Principal, *, number: str, contact_id: str | None,
                            line_name: str | None) -> tuple[str, OutboundCall]:
        """Check, open the conversation, ring the agent; returns (conversation id, call)."""
        if who.agent_id is None:
            raise ApiError("only agents have a phone to call from", code="not_an_agent",
                           status=403)  # fmt: skip
        region = self._ctx.settings.default_region
        try:
            e164 = normalize_phone(number, region)
        except ParseError as exc:
            raise ValidationFailed(f"number: {exc}", data={"field": "number"}) from None
        if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):  # possible is not enough
            raise ValidationFailed("number: not a valid phone number", data={"field": "number"})
        line = self._line_for(line_name)
        if not line.channel.connected.is_set():
            raise _unavailable("the voice line is not connected to Asterisk",
                               "voice_not_connected")  # fmt: skip
        if e164 == line.address:
            raise ValidationFailed("number: that is this line's own number",
                                   data={"field": "number"})  # fmt: skip
        call_id = new_id("interaction").split("_", 1)[1].lower()  # unique, time-ordered
        async with self._lock:  # checks to published assignment: one click-to-call at a time
            async with self._ctx.sessions() as session, session.begin():
                agent = await session.get(Agent, who.agent_id)
                if agent is None:
                    raise ApiError("no agent profile", code="not_an_agent", status=403)
                self._check_agent(agent)
                contact = await contact_for_number(session, e164, contact_id)
                conv, events = await open_outbound_call(
                    session, contact=contact, instance_id=line.instance_id,
                    queue_id=line.queue_id, agent=agent, number=e164, call_id=call_id,
                )  # fmt: skip
                endpoint = agent.voice_endpoint or ""
                conv_id = conv.id
            await self._publish(events)  # the router now counts the call (agent busy)
        log.info("click-to-call %s: agent %s dials out on %s", call_id, who.agent_id, line.name)
        call = await self.dial(line, conv_id, agent_endpoint=endpoint, number=e164,
                               call_id=call_id)  # fmt: skip
        return conv_id, call

    async def dial(self, line: Line, conv_id: str, *, agent_endpoint: str, number: str,
                   call_id: str, ended: Ended | None = None) -> OutboundCall:
        """Ring the agent, then ``number``, for conversation ``conv_id`` (whose ``CALL`` item
        has ``call_id``); progress goes to its timeline and the end to ``ended`` (default:
        resolve the conversation). 503 when the line cannot dial; the end is reported first."""
        on_end = ended or self._ended
        try:
            return await line.dialer.dial(
                agent_endpoint=agent_endpoint,
                customer_endpoint=customer_dial_string(line.trunk or "", number),
                number=number, call_id=call_id, report=self._reporter(line, conv_id, on_end),
                customer_ring_timeout=line.customer_ring_timeout,
            )  # fmt: skip
        except ChannelError as exc:
            await on_end(conv_id, OutboundEnded(f"not_dialed:{exc.code}", False, 0.0))
            raise _unavailable(str(exc), exc.code) from None

    def _check_agent(self, agent: Agent) -> None:
        if not agent.voice_endpoint:
            raise Conflict("you have no phone (voice_endpoint) to call from",
                           code="no_voice_endpoint")  # fmt: skip
        if agent.presence == Presence.OFFLINE.value:
            raise Conflict("log in (any presence but offline) before calling out",
                           code="agent_offline")  # fmt: skip
        limit = int(agent.capacity.get("voice", 0) or 0)
        if limit < 1:
            raise Conflict("your voice capacity is 0", code="no_voice_capacity")
        busy = sum(1 for ln in self._lines.values() for c in ln.dialer.calls().values()
                   if c.agent_endpoint == agent.voice_endpoint)  # fmt: skip
        dispatcher = self._ctx.extras.get("dispatcher")
        view = dispatcher.router.agent(agent.id) if dispatcher is not None else None
        if view is not None:
            held = dict(view.held).get("voice", 0)
            busy = max(busy, int(held))
        if busy >= limit:
            raise Conflict("you are already on a call (or one is being offered to you)",
                           code="agent_busy")  # fmt: skip

    # --- what the call reports ----------------------------------------------------------------

    def _reporter(self, line: Line, conv_id: str, ended: Ended) -> Any:
        async def report(call: OutboundCall, notice: OutNotice | Recorded) -> None:
            if isinstance(notice, AgentUp):
                await self._note(conv_id, {"event": "agent_answered", "call_id": call.id,
                                           "endpoint": call.agent_endpoint},
                                 text=f"Agent answered: calling {call.number}")  # fmt: skip
            elif isinstance(notice, CustomerUp):
                await self._note(conv_id, {"event": "answered", "call_id": call.id,
                                           "number": call.number},
                                 text=f"{call.number} answered: connected, recording")
            elif isinstance(notice, OutboundEnded):
                await ended(conv_id, notice)
            elif isinstance(notice, Recorded):
                await self._recorded(line, conv_id, call, notice)
            elif isinstance(notice, RecordingReady):  # the dialer fetches it; never reported
                pass

        return report

    async def note(self, conv_id: str, facts: dict[str, Any], *, text: str = "") -> None:
        """Append one call fact to ``conv_id``'s timeline and publish it."""
        await self._note(conv_id, facts, text=text)

    async def _note(self, conv_id: str, facts: dict[str, Any],
                    who: Principal | None = None, *, text: str = "") -> None:
        actor = ({"actor_type": ActorType.AGENT, "actor_id": who.agent_id or who.user_id}
                 if who is not None else {})  # fmt: skip
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            if conv is None:
                return
            event = await record_call_event(session, conv, facts, text=text,
                                            **actor)  # type: ignore[arg-type]
        await self._publish([event])

    async def _ended(self, conv_id: str, end: OutboundEnded) -> None:
        outcome = "completed" if end.connected else end.reason
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            if conv is None:
                return
            note = await record_call_event(session, conv, {
                "event": "ended", "reason": end.reason, "connected": end.connected,
                "talk_s": end.talk_s,
            }, text=ended_text(end))  # fmt: skip
            before = dict(conv.attributes.get("call") or {})  # direction, number
            events = await resolve_ended_call(session, conv, outcome=outcome,
                                              end={"reason": end.reason, "wait_s": None})
            if events:
                conv.attributes = {**conv.attributes, "call": {
                    **before, **conv.attributes["call"], "talk_s": end.talk_s}}  # fmt: skip
        log.info("click-to-call in %s ended: %s", conv_id, end.reason)
        await self._publish([note, *events])

    async def _recorded(self, line: Line, conv_id: str, call: OutboundCall,
                        rec: Recorded) -> None:
        """Into the media store and the timeline through ingest, like an inbound recording."""
        await self._ctx.sink(Inbound(
            channel=ChannelKind.VOICE, channel_id=line.address,
            external_id=f"{call.id}:recording", sender=Address(AddressKind.PHONE, call.number),
            kind=InboundKind.EVENT, thread_refs=(f"{CONVERSATION_REF_PREFIX}{conv_id}",),
            received_at=utcnow(), attachments=(Attachment(f"{rec.name}.wav", "audio/wav",
                                                          rec.wav),),
            metadata={"event": "recording", "recording": rec.name, "direction": "outbound"},
        ))  # fmt: skip

    async def resolve_lost(self, line: Line) -> int:
        """At start: click-to-calls of a previous run are not adopted (their legs are hung up
        on connect), so their still-open conversations are resolved as ``lost`` (which frees the
        agents in the router); a callback being dialled counts a failed attempt instead (back to
        the queue, or pending). Returns how many were resolved."""
        events: list[Event] = []
        async with self._ctx.sessions() as session, session.begin():
            rows = (await session.execute(
                select(Conversation).where(
                    Conversation.channel_instance_id == line.instance_id,
                    Conversation.status.in_([ConversationStatus.ASSIGNED.value,
                                             ConversationStatus.PENDING.value]),
                )
            )).scalars().all()  # fmt: skip
            for conv in rows:
                if (conv.attributes.get("call") or {}).get("direction") != "outbound":
                    continue
                if line.dialer.call(await call_id_of(session, conv.id) or "") is not None:
                    continue
                if conv.attributes.get("callback"):  # a failed attempt: retry or pending
                    from hub.wiring.voice_callbacks import end_attempt

                    events += await end_attempt(session, conv, OutboundEnded(
                        "hub_restart", False, 0.0), limit=line.callback_attempts)  # fmt: skip
                    continue
                before = dict(conv.attributes.get("call") or {})
                events.append(await record_call_event(session, conv, {
                    "event": "ended", "reason": "hub_restart", "connected": None},
                    text="Call lost: the hub restarted during it"))  # fmt: skip
                events += await resolve_ended_call(session, conv, outcome="lost",
                                                   end={"reason": "hub_restart", "wait_s": None})
                conv.attributes = {**conv.attributes,
                                   "call": {**before, **conv.attributes["call"]}}  # fmt: skip
        lost = sum(1 for e in events if e.name == "conversation.resolved")
        if lost:
            log.warning("%d click-to-call(s) of a previous run resolved as lost", lost)
        await self._publish(events)
        return lost

    async def hangup(self, who: Principal, conv: Conversation) -> OutboundCall:
        live = await self.live(conv)
        if live is None:
            raise Conflict("the call is over", code="no_live_call")
        line, call = live
        await self._note(conv.id, {"event": "hangup", "call_id": call.id, "by": who.user_id},
                         who, text=f"Hang-up requested by {who.name}")  # fmt: skip
        await line.dialer.hangup(call.id)
        return line.dialer.call(call.id) or call

    async def _publish(self, events: list[Event]) -> None:
        if events and self._ctx.bus is not None:
            await self._ctx.bus.publish(events)


_WHY = {
    "agent_noanswer": "your phone was not answered",
    "agent_busy": "your phone was busy",
    "customer_busy": "the customer's line was busy",
    "customer_noanswer": "the customer did not answer",
    "agent_hangup": "the agent hung up",
    "customer_hangup": "the customer hung up",
    "hub": "hung up from the inbox",
}


def ended_text(end: OutboundEnded) -> str:
    """The timeline line for the end of a click-to-call."""
    why = _WHY.get(end.reason, end.reason.replace("_", " "))
    if end.connected:
        return f"Call ended after {end.talk_s:.0f} s: {why}"
    return f"Call not connected: {why}"
