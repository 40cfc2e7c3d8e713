"""Transfers of a live inbound call, from the inbox (hub.api.call_transfers).

Theory of operation
-------------------
The channel does the telephony (:mod:`channels.voice.call_transfer`); this decides where the call
goes and keeps the conversation and the timeline in step. Every step is a timeline ``event`` with
payload ``{"call": {"event": "transfer", "kind": blind|attended, "stage": ..., "by", "from_agent",
"to": {agent_id | queue_id | number}}}``; moving the conversation also writes the usual
``transfer`` item (:func:`hub.actions.conversations.do_transfer`).

- **Blind** (``kind=blind``): the agent's leg hangs up at once and the caller hears music on hold.
  To a *queue*: the conversation is transferred to it and the router offers it like new work (the
  offered agent's phone rings through :class:`hub.wiring.voice_calls.VoiceCalls`). To an *agent*
  (who must be ready): the conversation goes back to its queue with that agent as the work
  item's preferred agent for :data:`PREFERRED_S`, so the router sends *them* a normal offer (the
  reason says ``preferred_agent``), their phone rings, answering accepts it; no answer or a
  decline and the router offers it to the queue's next agent. To an external *number*: dialled
  through the line's ``outbound_endpoint`` pattern; no answer sends it back to its queue.
- **Attended** (``kind=attended``, agent or number): the caller is put on hold, a consult leg
  rings the target and the request returns once it answered (409 ``target_unavailable`` if not;
  the caller stays on hold). The agent talks to the target, then ``complete`` (caller joins the
  target, the agent's leg hangs up; an agent target gets the conversation) or ``cancel``.

A call transferred to an external number stays the transferring agent's conversation until the
call ends (its recording and end still land in it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Literal

from channels.addresses import normalize_phone
from channels.base import ChannelError, ParseError, PermanentChannelError
from channels.voice import AgentUnavailable, CallGone, VoiceChannel
from channels.voice.outbound import customer_dial_string
from hub.actions.conversations import do_transfer
from hub.auth.sessions import Principal
from hub.background import Background
from hub.channel_host import HostContext
from hub.db.models import Agent, Conversation, Queue
from hub.dispatch.mapping import work_item
from hub.domain import ActorType
from hub.errors import ApiError, Conflict, NotFound, ValidationFailed
from hub.events import Event
from hub.wiring.voice_calls import SYSTEM, VoiceCalls
from hub.wiring.voice_outbound import VoiceOutbound
from hub.wiring.voice_store import record_call_event
from routing import events as rev

log = logging.getLogger(__name__)

TRANSFERS_KEY = "voice.transfers"
PREFERRED_S = 20.0  # how long a blind transfer's target agent has the call to themselves
Kind = Literal["blind", "attended"]


@dataclass(frozen=True, slots=True)
class Target:
    agent_id: str | None = None
    queue_id: str | None = None
    number: str | None = None  # E.164
    endpoint: str | None = None  # what to dial (agent phone or trunk); None for a queue

    def facts(self) -> dict[str, Any]:
        return {k: v for k, v in (("agent_id", self.agent_id), ("queue_id", self.queue_id),
                                  ("number", self.number)) if v is not None}  # fmt: skip


@dataclass(eq=False)
class _Consult:
    conversation_id: str
    target: Target
    by: str
    from_agent: str | None


def transfers_of(ctx: HostContext, calls: VoiceCalls, outbound: VoiceOutbound) -> VoiceTransfers:
    """The one transfer service of this hub process (the API finds it in ``extras``)."""
    found = ctx.shared.get(TRANSFERS_KEY)
    if not isinstance(found, VoiceTransfers):
        found = VoiceTransfers(ctx, calls, outbound)
        ctx.shared[TRANSFERS_KEY] = ctx.extras[TRANSFERS_KEY] = found
    return found


class VoiceTransfers:
    """One per hub process; see the module docstring."""

    def __init__(self, ctx: HostContext, calls: VoiceCalls, outbound: VoiceOutbound) -> None:
        self._ctx = ctx
        self._calls = calls
        self._outbound = outbound
        self._consults: dict[str, _Consult] = {}  # by call id, once the target answered
        self._tasks = Background("voice transfer ring")

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- checks ------------------------------------------------------------------------------

    async def _live(self, conv: Conversation) -> tuple[VoiceChannel, str]:
        if conv.channel != "voice":
            raise Conflict("this conversation is not a call", code="not_a_call")
        live = await self._calls.live_call(conv)
        if live is None:
            raise Conflict("the call is over", code="no_live_call")
        return live

    async def target(self, conv: Conversation, *, kind: Kind, agent_id: str | None,
                     queue_id: str | None, number: str | None) -> Target:
        """Validate where the call should go; raises 404 / 409 / 422 with precise codes."""
        if sum(x is not None for x in (agent_id, queue_id, number)) != 1:
            raise ValidationFailed("give exactly one of agent_id, queue_id or number",
                                   code="invalid_transfer")  # fmt: skip
        if queue_id is not None:
            if kind == "attended":
                raise ValidationFailed("an attended transfer needs an agent or a number",
                                       code="invalid_transfer", data={"field": "queue_id"})
            async with self._ctx.sessions() as session:
                if await session.get(Queue, queue_id) is None:
                    raise NotFound(f"queue {queue_id} not found")
            return Target(queue_id=queue_id)
        if agent_id is not None:
            return await self._agent_target(conv, agent_id)
        assert number is not None
        return self._number_target(conv, number)

    async def _agent_target(self, conv: Conversation, agent_id: str) -> Target:
        async with self._ctx.sessions() as session:
            agent = await session.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        if agent_id == conv.assignee_id:
            raise Conflict("the call is already theirs", code="same_agent")
        if not agent.voice_endpoint:
            raise Conflict("that agent has no phone", code="no_voice_endpoint")
        dispatcher = self._ctx.extras.get("dispatcher")
        view = dispatcher.router.agent(agent_id) if dispatcher is not None else None
        if (view is None or not view.logged_in or view.presence.value != "ready"
                or view.offer_id is not None or any(m.value == "voice" for m, _ in view.held)):
            raise Conflict("that agent is not ready for a call", code="agent_unavailable")
        return Target(agent_id=agent_id, endpoint=agent.voice_endpoint)

    def _number_target(self, conv: Conversation, number: str) -> Target:
        try:
            e164 = normalize_phone(number, self._ctx.settings.default_region)
        except ParseError as exc:
            raise ValidationFailed(f"number: {exc}", data={"field": "number"}) from None
        line = self._outbound.line(conv.channel_instance_id)
        if line is None or not line.trunk:
            raise Conflict("this line has no outbound_endpoint to dial numbers through",
                           code="outbound_not_configured")  # fmt: skip
        return Target(number=e164, endpoint=customer_dial_string(line.trunk, e164))

    # --- timeline ----------------------------------------------------------------------------

    async def _note(self, conv_id: str, who: Principal, facts: dict[str, Any],
                    move: Target | None = None) -> None:
        """Record a transfer step; with ``move`` also transfer the conversation to its agent or
        queue (a queue target is then routed by the router)."""
        events: list[Event] = []
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            if conv is None:
                return
            events.append(await record_call_event(
                session, conv, {"event": "transfer", **facts},
                actor_type=ActorType.AGENT if who.agent_id else ActorType.SYSTEM,
                actor_id=who.agent_id or who.user_id or None,
            ))  # fmt: skip
            if move is not None and (move.agent_id or move.queue_id):
                events += await do_transfer(session, who, conv, agent_id=move.agent_id,
                                            queue_id=move.queue_id,
                                            note=f"call transfer ({facts.get('kind')})")
        if events and self._ctx.bus is not None:
            await self._ctx.bus.publish(events)

    @staticmethod
    def _facts(kind: Kind, stage: str, who: Principal, from_agent: str | None,
               target: Target, call_id: str, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "stage": stage, "by": who.user_id, "from_agent": from_agent,
                "to": target.facts(), "call_id": call_id, **extra}  # fmt: skip

    # --- blind -------------------------------------------------------------------------------

    async def blind(self, who: Principal, conv: Conversation, target: Target) -> str:
        """Send the call away now; returns the call's state (``queued`` while the target rings)."""
        channel, call_id = await self._live(conv)
        await _channel_call(channel.requeue(call_id))
        from_agent = conv.assignee_id
        facts = self._facts("blind", "requested", who, from_agent, target, call_id)
        if target.agent_id is not None and await self._offer_to(who, conv.id, target, facts):
            call = channel.call(call_id)
            return call.state.value if call is not None else "ended"
        await self._note(conv.id, who, facts, move=Target(queue_id=target.queue_id)
                         if target.queue_id else None)  # fmt: skip
        if target.endpoint is not None:
            self._tasks.spawn(self._ring(who, conv, channel, call_id, target),
                              f"voice-transfer-{call_id}")
        call = channel.call(call_id)
        return call.state.value if call is not None else "ended"

    async def _offer_to(self, who: Principal, conv_id: str, target: Target,
                        facts: dict[str, Any]) -> bool:
        """Blind transfer to an agent through the router: back to the queue with them as the
        preferred agent, so they get the offer (and the ring). False: no router here."""
        dispatcher = self._ctx.extras.get("dispatcher")
        if dispatcher is None:
            return False
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conv_id)
            queue = await session.get(Queue, conv.queue_id) if conv and conv.queue_id else None
            if conv is None or queue is None:
                return False
            events = [await record_call_event(
                session, conv, {"event": "transfer", **facts},
                actor_type=ActorType.AGENT if who.agent_id else ActorType.SYSTEM,
                actor_id=who.agent_id or who.user_id or None,
            )]  # fmt: skip
            events += await do_transfer(session, who, conv, agent_id=None, queue_id=queue.id,
                                        note="call transfer (blind) to an agent")
            await session.flush()
            work = replace(work_item(conv, queue.priority, preferred_agent=target.agent_id),
                           preferred_window_s=PREFERRED_S)  # fmt: skip
        now = dispatcher.clock()
        view = dispatcher.router.work(conv_id)
        feed: list[rev.Event] = []
        if view is not None:
            feed.append(rev.WorkFinished(conv_id, now) if view.status == "assigned"
                        else rev.WorkWithdrawn(conv_id, now, reason="transferred"))  # fmt: skip
        feed.append(rev.WorkQueued(work, now))
        if self._ctx.bus is not None:  # not conversation.queued: the work is fed below
            await self._ctx.bus.publish([e for e in events if e.name != "conversation.queued"])
        await dispatcher.feed(feed)
        return True

    async def _ring(self, who: Principal, conv: Conversation, channel: VoiceChannel,
                    call_id: str, target: Target) -> None:
        """Ring the blind transfer's agent or number; no answer: back to the conversation's
        queue, where the router finds the next agent (the caller keeps hearing MOH)."""
        from_agent = conv.assignee_id
        timeout = None
        if target.number is not None:
            line = self._outbound.line(conv.channel_instance_id)
            timeout = line.customer_ring_timeout if line is not None else None
        try:
            assert target.endpoint is not None
            leg = await channel.connect_agent(call_id, target.endpoint, ring_timeout=timeout)
        except CallGone:
            return
        except ChannelError as exc:
            reason = exc.reason if isinstance(exc, AgentUnavailable) else exc.code
            if reason == "caller_gone":
                return
            log.info("call %s: blind transfer target did not answer (%s)", call_id, reason)
            back = Target(queue_id=conv.queue_id) if conv.queue_id else None
            await self._note(conv.id, SYSTEM, self._facts(
                "blind", "failed", who, from_agent, target, call_id, reason=reason,
                back_to_queue=conv.queue_id), move=back)  # fmt: skip
            if back is None:
                await channel.hangup(call_id)
            return
        except Exception:
            log.exception("call %s: blind transfer failed", call_id)
            return
        await self._note(conv.id, SYSTEM, self._facts(
            "blind", "answered", who, from_agent, target, call_id, target_channel=leg),
            move=Target(agent_id=target.agent_id) if target.agent_id else None)  # fmt: skip

    # --- attended ----------------------------------------------------------------------------

    async def consult(self, who: Principal, conv: Conversation, target: Target) -> str:
        """Hold the caller and ring the target; returns once it answered (the agent is now
        talking to it), or raises 409 ``target_unavailable`` (the caller stays on hold)."""
        channel, call_id = await self._live(conv)
        for gone in [c for c in self._consults if channel.call(c) is None]:
            del self._consults[gone]  # calls that ended while consulted
        if call_id in self._consults:
            raise Conflict("a consultation is already going on", code="consult_pending")
        assert target.endpoint is not None
        from_agent = conv.assignee_id
        await self._note(conv.id, who, self._facts("attended", "consulting", who, from_agent,
                                                   target, call_id))  # fmt: skip
        try:
            leg = await channel.consult(call_id, target.endpoint)
        except AgentUnavailable as exc:
            await self._note(conv.id, who, self._facts("attended", "failed", who, from_agent,
                                                       target, call_id, reason=exc.reason))
            raise Conflict(f"the target did not answer ({exc.reason}); the caller is on hold",
                           code="target_unavailable", data={"reason": exc.reason}) from None
        except PermanentChannelError as exc:
            raise Conflict(str(exc), code=exc.code) from None
        except ChannelError as exc:
            raise ApiError(str(exc), code=exc.code, status=503) from None
        self._consults[call_id] = _Consult(conv.id, target, who.user_id, from_agent)
        await self._note(conv.id, who, self._facts("attended", "answered", who, from_agent,
                                                   target, call_id, target_channel=leg))
        return "consulted"

    async def finish(self, who: Principal, conv: Conversation, *, complete: bool) -> str:
        """Complete (caller to the target, agent out) or cancel (back to the caller)."""
        channel, call_id = await self._live(conv)
        pending = self._consults.get(call_id)
        await _channel_call(channel.complete_transfer(call_id) if complete
                            else channel.cancel_transfer(call_id))  # fmt: skip
        self._consults.pop(call_id, None)
        target = pending.target if pending is not None else Target()
        from_agent = pending.from_agent if pending is not None else conv.assignee_id
        stage = "completed" if complete else "cancelled"
        move = Target(agent_id=target.agent_id) if complete and target.agent_id else None
        await self._note(conv.id, who, self._facts("attended", stage, who, from_agent, target,
                                                   call_id), move=move)  # fmt: skip
        call = channel.call(call_id)
        return call.state.value if call is not None else "ended"


async def _channel_call(coro: Any) -> None:
    """Run a channel control; its refusals become 409, Asterisk trouble 503."""
    try:
        await coro
    except PermanentChannelError as exc:
        raise Conflict(str(exc), code=exc.code) from None
    except ChannelError as exc:
        raise ApiError(str(exc), code=exc.code, status=503) from None
