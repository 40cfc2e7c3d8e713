"""Voice orchestration: the router decides who answers, this makes their phone ring.

Theory of operation
-------------------
A queued call is ordinary routable work (ingest made a conversation of its ``CALL`` item); the
caller hears music on hold in Asterisk while the router looks for an agent. This bus listener
connects the router's decisions to the phones:

- The router offered a voice conversation → ring the agent's ``voice_endpoint`` with
  :meth:`VoiceChannel.connect_agent` (the channel plays the configured whisper to the agent, then
  bridges and records). Normally that happens the moment the router decided, while the offer is
  still being written (:mod:`hub.dispatch.early`): the call id comes from the ``call`` item's
  ``interaction.created`` event (published before the conversation is routed) and the endpoint
  from the dispatcher. Nothing is recorded or decided for that ring until the offer's write is
  known to have committed; if it did not, the ring is cancelled. When the early path does not
  apply (call not known here, endpoint unknown) the committed ``offer`` event rings instead,
  after reading both from the database. The ring timeout is the channel's, cut to fit inside
  the offer's time to live, so the hub, not the offer's expiry, normally ends a ring.
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
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.base import ChannelError
from channels.voice import AgentUnavailable, CallGone, VoiceChannel
from channels.voice.call import CallState
from hub.actions.conversations import do_transfer
from hub.auth.sessions import Principal
from hub.background import Background
from hub.channel_host import HostContext
from hub.db.models import Conversation
from hub.dispatch.early import EarlyOffer
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
    saved: asyncio.Future[bool] | None = None  # early ring: whether the offer was written
    leg_id: str = field(default_factory=lambda: f"agent-{uuid.uuid4().hex[:16]}")
    channel: VoiceChannel | None = None
    call_id: str | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class _Target:
    """Where to ring: the live call, the phone, and the conversation when already read."""

    channel: VoiceChannel
    call_id: str
    endpoint: str
    conv: Conversation | None


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
        self._early: set[str] = set()  # offers rung before their write: skip their event
        # conversation id -> (channel instance id, call id) of its latest inbound call, from
        # the call item's interaction.created (so an early offer needs no database read)
        self._targets: dict[str, tuple[str, str]] = {}
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

    def on_early_offer(self, offer: EarlyOffer) -> None:
        """The router just offered a conversation (not yet written): ring now if it is a call
        queued here and the agent's phone is known; otherwise the ``offer`` event will."""
        target = self._targets.get(offer.conversation_id)
        if target is None or not offer.voice_endpoint or offer.offer_id in self._rings:
            return
        channel = self._channels.get(target[0])
        call = channel.call(target[1]) if channel is not None else None
        if (channel is None or call is None or call.state is not CallState.QUEUED
                or not channel.connected.is_set()):  # fmt: skip
            return
        ring = _Ring(offer.offer_id, offer.agent_id, offer.conversation_id, saved=offer.saved)
        self._rings[ring.offer_id] = ring
        self._early.add(ring.offer_id)
        expires = datetime.fromtimestamp(offer.expires_at, UTC).isoformat()
        early = _Target(channel, target[1], offer.voice_endpoint, None)
        self._tasks.spawn(self._ring(ring, expires, early), f"voice-ring-{ring.offer_id}")
        self._tasks.spawn(self._unless_saved(ring), f"voice-saved-{ring.offer_id}")

    async def _unless_saved(self, ring: _Ring) -> None:
        """An early ring whose offer was never written is cancelled (the router was rebuilt
        from the database, which does not know it)."""
        assert ring.saved is not None
        if await ring.saved:
            return
        self._early.discard(ring.offer_id)
        log.warning("offer %s was not saved: cancelling its ring", ring.offer_id)
        ring.revoked = True
        await self._cancel(ring)

    def _remember_call(self, data: dict[str, Any]) -> None:
        payload = data.get("payload") or {}
        instance = next((iid for iid, ch in self._channels.items()
                         if ch.channel_id == payload.get("channel_id")), None)  # fmt: skip
        if instance is not None and data.get("external_id"):
            self._targets[str(data["conversation_id"])] = (instance, str(data["external_id"]))

    async def on_event(self, event: Event) -> None:
        name, data = event.name, event.data
        if name == "offer" and data.get("offer_id") in self._early:
            self._early.discard(str(data["offer_id"]))  # rung already (on_early_offer)
        elif name == "offer" and data.get("channel") == "voice":
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
            and data.get("kind") == "call"
            and data.get("direction") == "inbound"
        ):
            self._remember_call(data)
        elif (
            name == "interaction.created"
            and data.get("channel") == "voice"
            and data.get("kind") == "event"
            and data.get("direction") == "inbound"
        ):
            meta = (data.get("payload") or {}).get("metadata") or {}
            if meta.get("event") in ("abandoned", "ended"):
                call_id = str(data.get("external_id") or "").rsplit(":", 1)[0]
                if self._targets.get(str(data["conversation_id"]), ("", ""))[1] == call_id:
                    del self._targets[str(data["conversation_id"])]  # no early rings after it
                self._tasks.spawn(self._ended(str(data["conversation_id"]), call_id, dict(meta)),
                            f"voice-end-{call_id}")  # fmt: skip

    async def aclose(self) -> None:
        await self._tasks.aclose()

    # --- offers -> phones --------------------------------------------------------------------

    async def _ring(self, ring: _Ring, expires_at: Any, target: _Target | None = None) -> None:
        try:
            if target is None:
                target = await self._lookup(ring)
            if target is not None:
                await self._ring_call(ring, target, expires_at)
        finally:
            self._rings.pop(ring.offer_id, None)

    async def _lookup(self, ring: _Ring) -> _Target | None:
        """The committed offer's phone and call, from the database; None when it is not rung
        (and then declined or resolved here, as the case may be)."""
        async with self._ctx.sessions() as session:
            endpoint, conv, call_id = await ring_lookup(session, ring.agent_id,
                                                        ring.conversation_id)  # fmt: skip
        channel = self._channels.get(conv.channel_instance_id or "") if conv else None
        if conv is not None and conv.attributes.get("callback"):
            return None  # callback work: the agent accepts it in the inbox and calls back
        if not endpoint:
            await self._not_rung(ring, "no_voice_endpoint")
            return None
        if (
            channel is not None
            and call_id is not None
            and channel.connected.is_set()
            and (channel.call(call_id) is None)
        ):
            await self._lost(ring, call_id)
            return None
        if channel is None or call_id is None or channel.call(call_id) is None:
            await self._not_rung(ring, "call_not_live")  # its channel is down or reconnecting
            return None
        return _Target(channel, call_id, endpoint, conv)

    async def _saved(self, ring: _Ring) -> bool:
        """Whether the ring's offer is in the database (an early ring waits for its commit)."""
        return True if ring.saved is None else await ring.saved

    async def _ring_call(self, ring: _Ring, target: _Target, expires_at: Any) -> None:
        if ring.revoked:
            return
        channel, call_id = target.channel, target.call_id
        # set in the same step as connect_agent queues the offer, so _cancel reaches the leg
        ring.channel, ring.call_id = channel, call_id
        timeout = self._ring_timeout(channel, expires_at)
        started = time.monotonic()
        facts: dict[str, Any] = {"offer_id": ring.offer_id, "agent_id": ring.agent_id,
                                 "endpoint": target.endpoint,
                                 "ring_timeout_s": timeout}  # fmt: skip
        log.info("ringing agent %s for call %s (offer %s)", ring.agent_id, call_id, ring.offer_id)
        try:
            agent_channel = await channel.connect_agent(call_id, target.endpoint,
                                                        ring_timeout=timeout,
                                                        leg_id=ring.leg_id)  # fmt: skip
        except AgentUnavailable as exc:
            if exc.reason == "caller_gone":
                return  # the call's end withdraws the work; nothing to decline
            saved = await self._saved(ring)  # nothing is written about an unsaved offer first
            reason = ("offer_not_saved" if not saved else "revoked" if ring.revoked
                      else exc.reason)  # fmt: skip
            await self._note(ring, {**facts, "event": "agent_failed", "reason": reason,
                                    "ring_s": round(time.monotonic() - started, 3)})  # fmt: skip
            if not ring.revoked:
                await self._decide(ring, accept=False)
            return
        except CallGone:
            return
        except ChannelError as exc:
            if await self._saved(ring):
                await self._note(ring, {**facts, "event": "agent_failed", "reason": exc.code})
                await self._decide(ring, accept=False)
            return
        await self._saved(ring)  # an unsaved offer's accept fails below: assigned anyway
        await self._note(ring, {**facts, "event": "agent_answered", "agent_channel": agent_channel,
                                "ring_s": round(time.monotonic() - started, 3)})  # fmt: skip
        conv = target.conv or await self._conversation(ring.conversation_id)
        if conv is not None and conv.queued_at is not None:
            self.news.answered(conv.queue_id, time.time() - conv.queued_at.timestamp())
        if not await self._decide(ring, accept=True):
            await self._assign_anyway(ring)

    async def _conversation(self, conversation_id: str) -> Conversation | None:
        async with self._ctx.sessions() as session:
            return await session.get(Conversation, conversation_id)

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
        """Stop the ring of a revoked (or unsaved) offer. Not rung yet: :meth:`_ring_call`
        sees ``ring.revoked`` and does not ring."""
        if ring.channel is not None and ring.call_id is not None:
            log.info("offer %s withdrawn: hanging up the ringing agent leg", ring.offer_id)
            await ring.channel.cancel_ring(ring.call_id, ring.leg_id)

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
