"""Voice orchestration: the router decides who answers, this makes their phone ring.

Theory of operation
-------------------
A queued call is ordinary routable work (ingest made a conversation of its ``CALL`` item); the
caller hears music on hold in Asterisk while the router looks for an agent. This bus listener
connects the router's decisions to the phones:

- ``offer`` for a voice conversation → look up the agent's ``voice_endpoint`` and the call, and
  ring it with :meth:`VoiceChannel.connect_agent` (the channel plays the configured whisper to the
  agent, then bridges and records). The ring timeout is the channel's, cut to fit inside the
  offer's time to live, so the hub, not the offer's expiry, normally ends a ring.
- The agent answers → accept the offer through the dispatcher, so the conversation is assigned
  exactly as if the agent had clicked accept. If the offer ended meanwhile, the agent is on the
  line anyway: reality wins and the conversation is transferred to them.
- No answer, busy, unreachable, or no ``voice_endpoint`` → decline the offer (with the reason on
  the timeline); the router moves to the next agent at once while the caller keeps hearing MOH.
  A call the (connected) channel does not know any more left while the hub was not looking
  (restart): its conversation is resolved as abandoned rather than offered forever.
- ``offer.revoked`` (expired, withdrawn, agent logged out) → hang up the ringing agent leg.
- The call's end event (``interaction.created`` of an inbound voice ``event`` with metadata
  ``event`` = ``abandoned`` / ``ended``) → resolve the conversation with the outcome and the wait;
  the router counts an unanswered one as abandoned, and starts the agent's wrap-up otherwise.
  A caller who left the queue for a callback or a voicemail (end reason ``callback`` /
  ``voicemail``) is not resolved: the conversation becomes callback work
  (:func:`hub.wiring.voice_queue.make_callback_work`), offered to agents without ringing a phone
  (accepting it dials the caller back: :mod:`hub.wiring.voice_callbacks`).
- The router's overflow steps ``voicemail`` / ``callback`` (bus events ``voice.voicemail`` /
  ``voice.callback``) → send the live call there (:meth:`VoiceChannel.voicemail` /
  :meth:`VoiceChannel.offer_callback`).
- Queue announcements ask :class:`hub.wiring.voice_queue.QueueNews` (the channel's
  ``queue_status``); each answer drops its cached estimated wait (read from the log).
  The recording arrives later as another event with the WAV attached; ingest files it in the same
  conversation (media store), nothing to do here.

Bus listeners run inside the publisher (the dispatcher publishes offers while holding its lock),
so every reaction runs in its own task and :meth:`on_event` returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.base import ChannelError
from channels.voice import AgentUnavailable, CallGone, VoiceChannel
from channels.voice.call import CallState
from hub.actions.conversations import do_transfer
from hub.auth.sessions import Principal
from hub.background import Background
from hub.channel_host import HostContext
from hub.db.models import Conversation
from hub.domain import ConversationStatus, Role
from hub.errors import ApiError
from hub.events import Event
from hub.wiring.voice_queue import QueueNews, make_callback_work
from hub.wiring.voice_store import (
    call_id_of,
    record_call_event,
    resolve_ended_call,
    ring_lookup,
)

log = logging.getLogger(__name__)

RING_MARGIN_S = 2.0  # stop ringing this long before the offer would expire
SYSTEM = Principal(user_id="system", email="", name="voice", role=Role.ADMIN, agent_id=None,
                   session_id="")  # fmt: skip


@dataclass(eq=False)
class _Ring:
    offer_id: str
    agent_id: str
    conversation_id: str
    channel: VoiceChannel | None = None
    call_id: str | None = None
    revoked: bool = False


def _agent_in(rooms: tuple[str, ...]) -> str | None:
    for room in rooms:
        if room.startswith("agent:"):
            return room[len("agent:") :]
    return None


class VoiceCalls:
    """One per hub process, shared by every voice channel row; see the module docstring."""

    def __init__(self, ctx: HostContext) -> None:
        self._ctx = ctx
        self._channels: dict[str, VoiceChannel] = {}  # by channel instance id
        self._rings: dict[str, _Ring] = {}  # by offer id, while the phone rings
        self._tasks = Background("voice orchestration step")
        self.news = QueueNews(ctx)

    def add(self, instance_id: str, channel: VoiceChannel) -> None:
        self._channels[instance_id] = channel
        channel.queue_status = self.news.status

    def channel(self, instance_id: str | None) -> VoiceChannel | None:
        return self._channels.get(instance_id or "")

    def remove(self, instance_id: str) -> int:
        """Forget a channel; returns how many are left."""
        self._channels.pop(instance_id, None)
        return len(self._channels)

    def ringing(self) -> list[str]:
        """Offer ids whose agent phone is ringing now (for tests and diagnostics)."""
        return list(self._rings)

    async def live_call(self, conv: Conversation) -> tuple[VoiceChannel, str] | None:
        """The running channel and live call id of ``conv``, if its call is still up."""
        channel = self._channels.get(conv.channel_instance_id or "")
        if channel is None:
            return None
        async with self._ctx.sessions() as session:
            call_id = await call_id_of(session, conv.id)
        if call_id is None or channel.call(call_id) is None:
            return None
        return channel, call_id

    # --- bus ---------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        name, data = event.name, event.data
        if name == "offer" and data.get("channel") == "voice":
            agent_id = _agent_in(event.rooms)
            if agent_id is None:
                log.warning("voice offer %s names no agent room; ignored", data.get("offer_id"))
                return
            ring = _Ring(str(data["offer_id"]), agent_id, str(data["conversation_id"]))
            self._rings[ring.offer_id] = ring
            self._tasks.spawn(self._ring(ring, data.get("expires_at")),
                              f"voice-ring-{ring.offer_id}")
        elif name in ("voice.voicemail", "voice.callback"):
            what = name.split(".", 1)[1]
            self._tasks.spawn(self._overflow(str(data["id"]), what), f"voice-{what}-{data['id']}")
        elif name == "offer.revoked":
            revoked = self._rings.get(str(data.get("offer_id")))
            if revoked is not None:
                revoked.revoked = True
                self._tasks.spawn(self._cancel(revoked), f"voice-cancel-{revoked.offer_id}")
        elif (
            name == "interaction.created"
            and data.get("channel") == "voice"
            and data.get("kind") == "event"
            and data.get("direction") == "inbound"
        ):
            meta = (data.get("payload") or {}).get("metadata") or {}
            if meta.get("event") in ("abandoned", "ended"):
                call_id = str(data.get("external_id") or "").rsplit(":", 1)[0]
                self._tasks.spawn(self._ended(str(data["conversation_id"]), call_id, dict(meta)),
                            f"voice-end-{call_id}")  # fmt: skip

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- offers -> phones --------------------------------------------------------------------

    async def _ring(self, ring: _Ring, expires_at: Any) -> None:
        try:
            await self._ring_once(ring, expires_at)
        finally:
            self._rings.pop(ring.offer_id, None)

    async def _ring_once(self, ring: _Ring, expires_at: Any) -> None:
        async with self._ctx.sessions() as session:
            endpoint, conv, call_id = await ring_lookup(session, ring.agent_id,
                                                        ring.conversation_id)  # fmt: skip
        channel = self._channels.get(conv.channel_instance_id or "") if conv else None
        if conv is not None and conv.attributes.get("callback"):
            return  # callback work: the agent accepts it in the inbox and calls back
        if not endpoint:
            await self._not_rung(ring, "no_voice_endpoint")
            return
        if (
            channel is not None
            and call_id is not None
            and channel.connected.is_set()
            and (channel.call(call_id) is None)
        ):
            await self._lost(ring, call_id)
            return
        if channel is None or call_id is None or channel.call(call_id) is None:
            await self._not_rung(ring, "call_not_live")  # its channel is down or reconnecting
            return
        if ring.revoked:
            return
        ring.channel, ring.call_id = channel, call_id
        timeout = self._ring_timeout(channel, expires_at)
        started = time.monotonic()
        facts: dict[str, Any] = {"offer_id": ring.offer_id, "agent_id": ring.agent_id,
                                 "endpoint": endpoint, "ring_timeout_s": timeout}  # fmt: skip
        log.info("ringing agent %s for call %s (offer %s)", ring.agent_id, call_id, ring.offer_id)
        try:
            agent_channel = await channel.connect_agent(call_id, endpoint, ring_timeout=timeout)
        except AgentUnavailable as exc:
            if exc.reason == "caller_gone":
                return  # the call's end withdraws the work; nothing to decline
            reason = "revoked" if ring.revoked else exc.reason
            await self._note(ring, {**facts, "event": "agent_failed", "reason": reason,
                                    "ring_s": round(time.monotonic() - started, 3)})  # fmt: skip
            if not ring.revoked:
                await self._decide(ring, accept=False)
            return
        except CallGone:
            return
        except ChannelError as exc:
            await self._note(ring, {**facts, "event": "agent_failed", "reason": exc.code})
            await self._decide(ring, accept=False)
            return
        await self._note(ring, {**facts, "event": "agent_answered", "agent_channel": agent_channel,
                                "ring_s": round(time.monotonic() - started, 3)})  # fmt: skip
        if conv is not None and conv.queued_at is not None:
            self.news.answered(conv.queue_id, time.time() - conv.queued_at.timestamp())
        if not await self._decide(ring, accept=True):
            await self._assign_anyway(ring)

    def _ring_timeout(self, channel: VoiceChannel, expires_at: Any) -> int:
        timeout = channel.settings.ring_timeout
        try:
            left = datetime.fromisoformat(str(expires_at)).timestamp() - time.time()
        except ValueError:
            return timeout
        return max(1, min(timeout, int(left - RING_MARGIN_S)))

    async def _not_rung(self, ring: _Ring, reason: str) -> None:
        log.info("offer %s: agent %s not rung (%s); declining", ring.offer_id, ring.agent_id,
                 reason)  # fmt: skip
        await self._note(ring, {"event": "not_rung", "reason": reason, "offer_id": ring.offer_id,
                                "agent_id": ring.agent_id})  # fmt: skip
        await self._decide(ring, accept=False)

    async def _lost(self, ring: _Ring, call_id: str) -> None:
        """The channel is connected (so it knows every call in its app) and this call is not
        there: the caller left while the hub could not see it (e.g. during a restart), so no
        end event will come. Resolve it as abandoned instead of offering it forever."""
        log.warning("call %s is gone from Asterisk; resolving its conversation", call_id)
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, ring.conversation_id)
            if conv is None:
                return
            events = await resolve_ended_call(
                session, conv, outcome="abandoned", end={"reason": "call_lost", "wait_s": None}
            )
        await self._publish(events)

    async def _decide(self, ring: _Ring, *, accept: bool) -> bool:
        """Accept or decline through the dispatcher; False when the offer is no longer live."""
        dispatcher = self._ctx.extras.get("dispatcher")
        if dispatcher is None:
            log.error("no dispatcher in this process; offer %s left to expire", ring.offer_id)
            return False
        try:
            await dispatcher.decide(ring.agent_id, ring.offer_id, accept)
        except ApiError as exc:  # NotFound / Conflict: expired, revoked or withdrawn meanwhile
            log.info("offer %s: %s failed: %s", ring.offer_id, "accept" if accept else "decline",
                     exc.code)  # fmt: skip
            return False
        return True

    async def _assign_anyway(self, ring: _Ring) -> None:
        """The agent picked up after the offer ended: they are talking to the caller, so the
        conversation is theirs (unless the call is already over)."""
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, ring.conversation_id)
            if conv is None or conv.status == ConversationStatus.RESOLVED.value:
                return
            if conv.assignee_id == ring.agent_id:
                return
            events = await do_transfer(session, SYSTEM, conv, agent_id=ring.agent_id,
                                       queue_id=None, note="answered the call after its offer "
                                       "ended")  # fmt: skip
        log.warning("offer %s ended while agent %s answered; assigned to them", ring.offer_id,
                    ring.agent_id)  # fmt: skip
        await self._publish(events)

    async def _cancel(self, ring: _Ring) -> None:
        """Stop the ring of a revoked offer: hang up its agent leg once it exists."""
        for _ in range(40):
            if ring.offer_id not in self._rings or ring.channel is None or ring.call_id is None:
                return
            call = ring.channel.call(ring.call_id)
            if call is None or call.state is not CallState.OFFERING:
                return
            if call.agent_channel is not None:
                log.info("offer %s revoked: hanging up the ringing agent leg", ring.offer_id)
                with contextlib.suppress(ChannelError):
                    await ring.channel.ari.hangup(call.agent_channel)
                return
            await asyncio.sleep(0.05)

    async def _note(self, ring: _Ring, call: dict[str, Any]) -> None:
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, ring.conversation_id)
            if conv is None:
                return
            event = await record_call_event(session, conv, call)
        await self._publish([event])

    # --- end of call -------------------------------------------------------------------------

    async def _ended(self, conversation_id: str, call_id: str, meta: dict[str, Any]) -> None:
        async with self._ctx.sessions() as session, session.begin():
            conv = await session.get(Conversation, conversation_id)
            if conv is None or await call_id_of(session, conversation_id) != call_id:
                return  # not this conversation's current call
            reason = meta.get("reason")
            if reason in ("callback", "voicemail"):
                events = await make_callback_work(session, conv, reason=str(reason), end=meta)
                outcome = f"callback work ({reason})"
            else:
                outcome = "abandoned" if meta.get("event") == "abandoned" else "completed"
                events = await resolve_ended_call(session, conv, outcome=outcome, end=meta)
        if events:
            log.info("call %s over (%s, waited %ss): conversation resolved", call_id, outcome,
                     meta.get("wait_s"))  # fmt: skip
        await self._publish(events)

    # --- router overflow -----------------------------------------------------------------------

    async def _overflow(self, conversation_id: str, what: str) -> None:
        """The router took a waiting call out of routing: voicemail or a callback offer."""
        async with self._ctx.sessions() as session:
            conv = await session.get(Conversation, conversation_id)
        live = await self.live_call(conv) if conv is not None else None
        if conv is None or live is None:
            return  # the caller already left: their end event settles the conversation
        channel, call_id = live
        try:
            await (channel.voicemail(call_id) if what == "voicemail"
                   else channel.offer_callback(call_id))
        except ChannelError as exc:
            log.warning("call %s: %s overflow failed: %s", call_id, what, exc.code)
            return
        async with self._ctx.sessions() as session, session.begin():
            fresh = await session.get(Conversation, conversation_id)
            if fresh is None:
                return
            event = await record_call_event(session, fresh, {"event": what, "call_id": call_id})
        await self._publish([event])

    async def _publish(self, events: list[Event]) -> None:
        if events and self._ctx.bus is not None:
            await self._ctx.bus.publish(events)
