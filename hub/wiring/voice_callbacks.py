"""Callback work dialled: the agent who accepts it is connected to the caller who asked for it.

Theory of operation
-------------------
A caller who pressed the callback digit or left a voicemail became *callback work*
(:func:`hub.wiring.voice_queue.make_callback_work`): a queued voice conversation with
``attributes.callback.number``. The router offers it like any work, without ringing a phone
(:mod:`hub.wiring.voice_calls`). When an agent accepts it (``conversation.assigned`` on the bus:
the offer accepted in the inbox, or a supervisor's assignment), this starts the click-to-call flow
on the *same* conversation: a new outbound ``CALL`` item (attempt *n*), the agent's phone first,
then the caller's number through the line's ``outbound_endpoint``
(:meth:`hub.wiring.voice_outbound.VoiceOutbound.dial`); progress lands on the timeline as for any
click-to-call. The router already counts the conversation against the agent's voice capacity.

How it ends:

- the caller answered: the call is recorded and, when it ends, the conversation is resolved
  (``attributes.call.outcome = completed``, ``attributes.callback.status = completed``);
- anything else (agent's phone not answered or busy, caller busy or not answering, the hub
  restarting mid-call) is a *failed attempt*, appended to ``attributes.callback.attempts`` with
  its reason.
  Below ``callback_attempts`` (``queue_experience``, default 3) the work goes back into its queue
  (status ``queued``, ``callback.status = retry``, behind the callers already waiting) for the
  next agent who accepts it; at the limit it becomes ``pending`` with ``callback.status =
  failed`` and no assignee, for a person to decide. Either way the agent is freed in the router.
  Every attempt counts, the agent side's too, so a broken phone cannot bounce the work forever.

When nothing can ring (the agent has no ``voice_endpoint``, no line has an ``outbound_endpoint``,
or the line is not connected to Asterisk) no attempt is made or counted: a
``callback_not_dialled`` item says why and the work stays with the agent, who calls back by
hand (the behaviour before automatic dialling).

Each step is a timeline item: the ``call`` (attempt), ``agent_answered``, ``answered``, ``ended``
(with the reason), then a ``status`` item ``callback_retry`` / ``callback_failed`` or the
resolution. Bus listeners run inside the publisher, so the work runs in tasks.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.voice.outbound import OutboundEnded
from hub.actions.conversations import conversation_event, conversation_rooms
from hub.actions.log import append, interaction_dict
from hub.background import Background
from hub.channel_host import HostContext
from hub.db.base import utcnow
from hub.db.models import Agent, Assignment, Conversation, ConversationRef
from hub.domain import ActorType, ConversationStatus, Direction, InteractionKind
from hub.errors import ApiError
from hub.events import Event
from hub.ids import new_id
from hub.wiring.voice_outbound import VoiceOutbound, ended_text
from hub.wiring.voice_store import record_call_event, resolve_ended_call

log = logging.getLogger(__name__)

CALLBACKS_KEY = "voice.callbacks"
DEFAULT_ATTEMPTS = 3


class VoiceCallbacks:
    """One per hub process (with the first voice row); see the module docstring."""

    def __init__(self, ctx: HostContext, outbound: VoiceOutbound) -> None:
        self._ctx = ctx
        self._out = outbound
        self._starting: set[str] = set()  # conversation ids between the event and the dial
        self._tasks = Background("callback step")

    async def on_event(self, event: Event) -> None:
        if event.name != "conversation.assigned":
            return
        data = event.data
        conv_id, agent_id = str(data.get("id") or ""), data.get("assignee_id")
        if data.get("status") != ConversationStatus.ASSIGNED.value or not agent_id:
            return
        if not conv_id or conv_id in self._starting:
            return
        self._starting.add(conv_id)
        self._tasks.spawn(self._start(conv_id, str(agent_id)), f"voice-callback-{conv_id}")

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- dialling -------------------------------------------------------------------------------

    async def _start(self, conv_id: str, agent_id: str) -> None:
        try:
            await self._start_once(conv_id, agent_id)
        finally:
            self._starting.discard(conv_id)

    async def _start_once(self, conv_id: str, agent_id: str) -> None:
        call_id = new_id("interaction").split("_", 1)[1].lower()
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            if conv is None or conv.channel != "voice" or conv.assignee_id != agent_id:
                return
            callback = dict(conv.attributes.get("callback") or {})
            number = callback.get("number")
            if not number or conv.status != ConversationStatus.ASSIGNED.value:
                return  # not callback work (or nobody to call)
            if callback.get("status") == "dialing" and await self._out.live(conv) is not None:
                return  # already being dialled (a repeated event)
            agent = await session.get(Agent, agent_id)
            endpoint = agent.voice_endpoint if agent is not None else None
            why = self._undialable(conv, endpoint)
            if why is not None:  # nothing can ring: the agent calls back by hand, as before
                note = await record_call_event(
                    session, conv, {"event": "callback_not_dialled", "reason": why},
                    text=f"Callback not dialled automatically ({why}): call {number} back "
                         "yourself")  # fmt: skip
        if why is not None:
            log.info("callback %s: not dialled (%s)", conv_id, why)
            await self._publish([note])
            return
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            if conv is None or conv.assignee_id != agent_id:
                return
            attempt = len(callback.get("attempts") or []) + 1
            limit = self._limit(conv)
            who = agent.display_name if agent is not None else agent_id
            row = await append(
                session, conv.id, kind=InteractionKind.CALL, direction=Direction.OUTBOUND,
                channel="voice", actor_type=ActorType.AGENT, actor_id=agent_id,
                external_id=call_id,
                text=f"Calling back {number} (attempt {attempt} of {limit}): ringing {who}'s "
                     "phone first",
                payload={"call": {"event": "dialing", "direction": "outbound", "number": number,
                                  "agent_id": agent_id, "endpoint": endpoint,
                                  "callback_attempt": attempt}},
            )  # fmt: skip
            session.add(ConversationRef(channel="voice", ref=call_id, conversation_id=conv.id))
            conv.attributes = {**conv.attributes,
                               "call": {"direction": "outbound", "number": number},
                               "callback": {**callback, "status": "dialing",
                                            "attempt": attempt}}  # fmt: skip
            await session.flush()
            event = Event("interaction.created", interaction_dict(row),
                          rooms=conversation_rooms(conv))  # fmt: skip
        await self._publish([event])
        line = self._out.line_for_callback(conv.channel_instance_id)
        log.info("callback %s: agent %s dials attempt %d on %s", conv_id, agent_id, attempt,
                 line.name)  # fmt: skip
        try:
            await self._out.dial(line, conv_id, agent_endpoint=endpoint or "", number=str(number),
                                 call_id=call_id, ended=self._ended)  # fmt: skip
        except ApiError as exc:  # the end (a failed attempt) is already recorded
            log.warning("callback %s: not dialled: %s", conv_id, exc.code)

    def _undialable(self, conv: Conversation, endpoint: str | None) -> str | None:
        """Why this callback cannot be dialled now (None: it can): no phone for the agent, no
        line with an ``outbound_endpoint``, or that line not connected to Asterisk. These are
        not attempts: nobody was called."""
        if not endpoint:
            return "no_voice_endpoint"
        try:
            line = self._out.line_for_callback(conv.channel_instance_id)
        except ApiError as exc:
            return exc.code
        return None if line.channel.connected.is_set() else "voice_not_connected"

    def _limit(self, conv: Conversation) -> int:
        line = self._out.line(conv.channel_instance_id)
        return line.callback_attempts if line is not None else DEFAULT_ATTEMPTS

    # --- the end of an attempt ------------------------------------------------------------------

    async def _ended(self, conv_id: str, end: OutboundEnded) -> None:
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            if conv is None or conv.status == ConversationStatus.RESOLVED.value:
                return
            events = await end_attempt(session, conv, end, limit=self._limit(conv))
        log.info("callback %s: attempt ended (%s)", conv_id, end.reason)
        await self._publish(events)

    async def _publish(self, events: list[Event]) -> None:
        if events and self._ctx.bus is not None:
            await self._ctx.bus.publish(events)


async def end_attempt(session: AsyncSession, conv: Conversation, end: OutboundEnded, *,
                      limit: int) -> list[Event]:
    """Record how a callback attempt ended and settle the conversation (see the module
    docstring): resolved when the caller was reached, else back to the queue or pending."""
    note = await record_call_event(session, conv, {
        "event": "ended", "reason": end.reason, "connected": end.connected, "talk_s": end.talk_s,
    }, text=ended_text(end))  # fmt: skip
    callback = dict(conv.attributes.get("callback") or {})
    attempts = [*(callback.get("attempts") or []), {
        "attempt": callback.get("attempt", len(callback.get("attempts") or []) + 1),
        "reason": end.reason, "connected": end.connected, "agent_id": conv.assignee_id,
        "at": utcnow().isoformat(),
    }]  # fmt: skip
    if end.connected:
        before = dict(conv.attributes.get("call") or {})
        events = await resolve_ended_call(session, conv, outcome="completed",
                                          end={"reason": end.reason, "wait_s": None})
        conv.attributes = {**conv.attributes,
                           "call": {**before, **conv.attributes["call"], "talk_s": end.talk_s},
                           "callback": {**callback, "status": "completed",
                                        "attempts": attempts}}  # fmt: skip
        return [note, *events]
    retry = len(attempts) < limit and conv.queue_id is not None
    await session.execute(
        update(Assignment)
        .where(Assignment.conversation_id == conv.id, Assignment.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason="callback_retry" if retry else "callback_failed")
    )  # fmt: skip
    conv.assignee_id = None
    conv.status = (ConversationStatus.QUEUED if retry else ConversationStatus.PENDING).value
    if retry:
        conv.queued_at = utcnow()
    status = "retry" if retry else "failed"
    conv.attributes = {**{k: v for k, v in conv.attributes.items() if k != "call"},
                       "callback": {**callback, "status": status, "attempts": attempts}}
    text = (f"Callback attempt {len(attempts)} of {limit} failed ({end.reason}): back in the queue"
            if retry else f"Callback failed after {len(attempts)} attempts ({end.reason}): "
            "pending")  # fmt: skip
    row = await append(
        session, conv.id, kind=InteractionKind.STATUS, direction=Direction.INTERNAL,
        channel=conv.channel, actor_type=ActorType.SYSTEM, text=text,
        payload={"status": conv.status, "reason": f"callback_{status}",
                 "callback": conv.attributes["callback"]},
    )  # fmt: skip
    await session.flush()
    # queued: the dispatcher finishes the agent's assignment and queues the work again;
    # pending: an assignment change without assignee, which only finishes it in the router
    name = "conversation.queued" if retry else "conversation.assigned"
    return [note, Event("interaction.created", interaction_dict(row),
                        rooms=conversation_rooms(conv)), conversation_event(name, conv)]
