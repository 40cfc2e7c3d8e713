"""Supervisor listen / whisper / barge in the hub (the ARI side is channels.voice.snoop).

A supervisor picks a conversation whose call is connected (inbound or click-to-call); the hub
rings the supervisor's own phone (their agent profile's ``voice_endpoint``) and, once answered,
connects it to a snoop on the agent's leg in the chosen mode. Start, every mode change and the
end (with who, mode and why) are items of the conversation's timeline. One live session per
supervisor; the session ends by itself when the call or the supervisor's phone hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from channels.base import ChannelError
from channels.voice.call import CallState
from channels.voice.outbound import OutState
from channels.voice.snoop import MonitorError, MonitorSession, check_mode
from hub.auth.sessions import Principal
from hub.channel_host import HostContext
from hub.db.models import Agent, Conversation
from hub.domain import ActorType
from hub.errors import ApiError, Conflict, NotFound, ValidationFailed
from hub.events import Event
from hub.wiring.voice_outbound import Line, VoiceOutbound
from hub.wiring.voice_store import call_id_of, record_call_event

log = logging.getLogger(__name__)

MONITOR_KEY = "voice.monitor"


@dataclass(eq=False)
class Watch:
    """A live monitor session as the hub tracks it."""

    line: Line
    conversation_id: str
    supervisor_user: str
    supervisor_agent: str
    supervisor_name: str
    session: MonitorSession | None = None  # None while the supervisor's phone rings


class VoiceMonitor:
    """One per hub process; see the module docstring."""

    def __init__(self, ctx: HostContext, outbound: VoiceOutbound) -> None:
        self._ctx = ctx
        self._outbound = outbound
        self._by_user: dict[str, Watch] = {}
        self._lock = asyncio.Lock()

    def current(self, user_id: str) -> Watch | None:
        return self._by_user.get(user_id)

    async def _target(self, conv: Conversation) -> tuple[Line, str]:
        """The line and the agent's channel of ``conv``'s connected call."""
        line = self._outbound.line(conv.channel_instance_id)
        if conv.channel != "voice" or line is None:
            raise Conflict("this conversation is not a call on a running voice line",
                           code="not_a_call")  # fmt: skip
        out = await self._outbound.live(conv)
        if out is not None:
            if out[1].state is not OutState.CONNECTED:
                raise Conflict("the call is not connected yet", code="call_not_connected")
            return line, out[1].agent_channel
        async with self._ctx.sessions() as session:
            call_id = await call_id_of(session, conv.id)
        call = line.channel.call(call_id or "")
        if call is None:
            raise Conflict("the call is over", code="no_live_call")
        if call.state not in (CallState.CONNECTED, CallState.HELD) or not call.agent_channel:
            raise Conflict(f"the call is {call.state}, not connected to an agent",
                           code="call_not_connected")  # fmt: skip
        return line, call.agent_channel

    async def start(self, who: Principal, conv: Conversation, mode: str) -> Watch:
        try:
            check_mode(mode)
        except MonitorError as exc:
            raise ValidationFailed(str(exc), data={"field": "mode"}) from None
        async with self._lock:
            if who.user_id in self._by_user:
                raise Conflict("you are already monitoring a call: stop it first",
                               code="already_monitoring")  # fmt: skip
            async with self._ctx.sessions() as db:
                agent = await db.get(Agent, who.agent_id) if who.agent_id else None
            if agent is None or not agent.voice_endpoint:
                raise Conflict("you have no phone (voice_endpoint) to listen on",
                               code="no_voice_endpoint")  # fmt: skip
            line, target = await self._target(conv)
            w = Watch(line, conv.id, who.user_id, agent.id, who.name)
            self._by_user[who.user_id] = w
            endpoint = agent.voice_endpoint
        try:
            live = await line.monitors.start(target, endpoint, mode, self._on_end(w))
        except ChannelError as exc:
            self._by_user.pop(who.user_id, None)
            await self._note(w, {"event": "monitor_failed", "mode": mode, "reason": exc.code},
                             f"{who.name} could not {mode}: {exc.code.replace('_', ' ')}")
            status = 503 if exc.code in ("ari_unreachable", "ari_timeout") else 409
            raise ApiError(str(exc), code=exc.code, status=status) from None
        w.session = live
        await self._note(w, {"event": "monitor_started", "mode": mode, "monitor_id": live.id},
                         f"{who.name} started to {mode}")
        log.info("supervisor %s monitors %s (%s)", who.user_id, conv.id, mode)
        return w

    async def set_mode(self, who: Principal, conv_id: str, mode: str) -> Watch:
        w = self._mine(who, conv_id)
        assert w.session is not None
        try:
            await w.line.monitors.set_mode(w.session.id, mode)
        except MonitorError as exc:
            if exc.code == "bad_mode":
                raise ValidationFailed(str(exc), data={"field": "mode"}) from None
            raise Conflict(str(exc), code=exc.code) from None
        except ChannelError as exc:
            raise ApiError(str(exc), code=exc.code, status=503) from None
        await self._note(w, {"event": "monitor_mode", "mode": mode, "monitor_id": w.session.id},
                         f"{w.supervisor_name} switched to {mode}")
        return w

    async def stop(self, who: Principal, conv_id: str) -> None:
        w = self._mine(who, conv_id)
        assert w.session is not None
        with contextlib.suppress(MonitorError):  # it ended by itself meanwhile: on_end said why
            await w.line.monitors.stop(w.session.id)

    def _mine(self, who: Principal, conv_id: str) -> Watch:
        w = self._by_user.get(who.user_id)
        if w is None or w.session is None or w.conversation_id != conv_id:
            raise NotFound("you are not monitoring this call", code="no_monitor")
        return w

    def _on_end(self, w: Watch) -> Any:
        async def ended(session: MonitorSession, reason: str) -> None:
            if self._by_user.get(w.supervisor_user) is w:
                del self._by_user[w.supervisor_user]
            await self._note(w, {"event": "monitor_ended", "mode": session.mode,
                                 "reason": reason, "monitor_id": session.id},
                             f"{w.supervisor_name} stopped monitoring "
                             f"({reason.replace('_', ' ')})")  # fmt: skip

        return ended

    async def _note(self, w: Watch, facts: dict[str, Any], text: str) -> None:
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, w.conversation_id)
            if conv is None:
                return
            event = await record_call_event(
                session, conv, {**facts, "supervisor_id": w.supervisor_agent,
                                "by": w.supervisor_user},
                actor_type=ActorType.AGENT, actor_id=w.supervisor_agent, text=text,
            )  # fmt: skip
        await self._publish([event])

    async def _publish(self, events: list[Event]) -> None:
        if events and self._ctx.bus is not None:
            await self._ctx.bus.publish(events)
