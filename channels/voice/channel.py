"""Voice channel: inbound calls through Asterisk's REST interface (ARI).

Theory of operation
-------------------
Asterisk's dialplan hands every inbound call to our Stasis app (``Stasis(<app>,inbound,<exten>)``).
From then on Asterisk does nothing on its own: each call is driven by events we receive on the ARI
WebSocket and by REST calls we make.

- :func:`channels.voice.stream.event_stream` keeps the WebSocket open (reconnect with backoff) and
  yields parsed, typed events (:mod:`channels.voice.events`).
- Each call gets a worker (:mod:`channels.voice.worker`) with an inbox. The run loop only routes
  events to inboxes (by channel, bridge, playback or recording id), so a slow call never delays
  another.
- A worker feeds its inputs to the pure state machine :func:`channels.voice.call.step` and
  executes what comes out: ARI actions (answer, play, MOH, originate the agent leg, bridge,
  record, hang up) in order, and notices for the hub (queued, agent answered/failed, ended,
  recording ready) which become :class:`Inbound` items for the sink or resolve the hub's calls.
- The hub drives calls with :meth:`VoiceChannel.connect_agent` (originate to the agent's PJSIP
  endpoint; returns on answer, raises :class:`AgentUnavailable` on no answer / busy while the caller
  keeps hearing music on hold), :meth:`cancel_ring`, :meth:`hold`, :meth:`unhold`,
  :meth:`hangup` and :meth:`pause_recording` / :meth:`resume_recording`.
- After every (re)connect the channel reconciles (:mod:`channels.voice.reconcile`): known calls
  get a ``Resync`` with the channels ARI still has (caller back to MOH, lost agent legs
  reported); callers found in the app that we do not know (hub restart) are adopted, either into
  their existing bridge or back to the queue. Nobody is left in silence.

Timings come from an injected monotonic clock; wall-clock times on Inbound come from the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from channels.base import (
    Address,
    AddressKind,
    ChannelError,
    ChannelKind,
    Outbound,
    ParseError,
    PermanentChannelError,
    SendResult,
    Sink,
)
from channels.voice import call as sm
from channels.voice import events as ev
from channels.voice.ari import AriClient
from channels.voice.inbound import ANONYMOUS, caller_address
from channels.voice.outbound import event_target
from channels.voice.reconcile import plan
from channels.voice.settings import AgentUnavailable, CallGone, VoiceSettings
from channels.voice.stream import Backoff, Connected, event_stream
from channels.voice.worker import CallWorker

__all__ = ["AgentUnavailable", "CallGone", "VoiceChannel", "VoiceSettings"]

log = logging.getLogger(__name__)


class VoiceChannel:
    """A running ARI Stasis app; see the module docstring."""

    kind = ChannelKind.VOICE

    def __init__(self, settings: VoiceSettings, *, ari: AriClient | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 backoff: Backoff | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.channel_id = settings.channel_id
        self.ari = ari or AriClient(settings.ari_url, settings.user, settings.password)
        self._clock = clock
        self._backoff = backoff
        self._sink: Sink | None = None
        self._calls: dict[str, CallWorker] = {}
        self._owner: dict[str, str] = {}  # channel / bridge id -> call id
        # channel / bridge id -> handler, for flows run beside inbound calls (click-to-call,
        # supervisor snoops: channels.voice.dialer / .snoop); see watch()
        self._watchers: dict[str, Callable[[ev.Event], Awaitable[None]]] = {}
        # run after each (re)connect's reconciliation, so those flows resync too
        self.reconnect_hooks: list[Callable[[], Awaitable[None]]] = []
        self.connected = asyncio.Event()  # set once the events stream is up and reconciled
        self.connections = 0  # how many times the events stream (re)connected
        # the hub's router: where a queued call stands, asked when an announcement is due
        self.queue_status: Callable[[str], Awaitable[sm.QueueStatus | None]] | None = None

    # --- receive loop ----------------------------------------------------------------------

    async def run(self, sink: Sink) -> None:
        self._sink = sink
        s = self.settings
        try:
            async for item in event_stream(s.ari_url, s.app, s.user, s.password,
                                           backoff=self._backoff):  # fmt: skip
                if isinstance(item, Connected):
                    self.connections += 1
                    await self._reconcile()
                    for hook in list(self.reconnect_hooks):
                        try:
                            await hook()
                        except Exception:
                            log.exception("reconnect hook failed")
                    self.connected.set()
                else:
                    await self._dispatch(item)
        finally:
            self.connected.clear()
            for w in list(self._calls.values()):
                if w.task is not None:
                    w.task.cancel()

    async def send(self, outbound: Outbound) -> SendResult:
        raise PermanentChannelError("voice calls take no text replies", code="unsupported")

    async def aclose(self) -> None:
        await self.ari.aclose()

    def call(self, call_id: str) -> sm.Call | None:
        """The current state of a call (a frozen snapshot)."""
        w = self._calls.get(call_id)
        return w.call if w else None

    def calls(self) -> dict[str, sm.Call]:
        return {cid: w.call for cid, w in self._calls.items()}

    # --- what the workers use (channels.voice.worker.WorkerHost) ----------------------------

    def now(self) -> float:
        return self._clock()

    def sink(self) -> Sink | None:
        return self._sink

    def own(self, key: str, call_id: str) -> None:
        self._owner[key] = call_id

    def forget(self, worker: CallWorker) -> None:
        for key in [k for k, v in self._owner.items() if v == worker.call.id]:
            del self._owner[key]
        if self._calls.get(worker.call.id) is worker:
            del self._calls[worker.call.id]

    # --- hub-facing controls ---------------------------------------------------------------

    async def connect_agent(self, call_id: str, agent_endpoint: str, *,
                            ring_timeout: int | None = None,
                            leg_id: str | None = None) -> str:  # fmt: skip
        """Ring ``agent_endpoint`` (e.g. ``PJSIP/agent1``) and bridge it with the caller.

        ``leg_id`` names the agent's channel (for :meth:`cancel_ring`; made up when None).
        Returns the agent channel id once bridged and recording; raises :class:`AgentUnavailable`
        (caller still queued, still hearing MOH) or :class:`CallGone`.
        """
        w = self._worker(call_id)
        if w.offer is not None and not w.offer.done():
            raise PermanentChannelError("an offer is already ringing", code="offer_pending")
        agent = leg_id or f"agent-{uuid.uuid4().hex[:16]}"
        self._owner[agent] = call_id
        w.offer = asyncio.get_running_loop().create_future()
        timeout = ring_timeout or self.settings.ring_timeout
        caller = w.caller.caller.number or ""
        await w.inbox.put((sm.Offer(agent_endpoint, agent, timeout, caller), None))
        return await w.offer

    async def cancel_ring(self, call_id: str, leg_id: str) -> None:
        """Stop ringing agent leg ``leg_id`` of :meth:`connect_agent` (its offer was withdrawn):
        its ``connect_agent`` raises :class:`AgentUnavailable` (``revoked``). Goes through the
        call's inbox, so it takes effect after the originate was sent, never before (a hang-up
        racing the originate would miss the leg). No-op when the call or the ring is over."""
        w = self._calls.get(call_id)
        if w is not None and w.call.state is not sm.CallState.ENDED:
            await w.inbox.put((sm.CancelOffer(leg_id), None))

    async def hold(self, call_id: str) -> None:
        await self._control(call_id, sm.HoldRequest(), sm.CallState.HELD)

    async def unhold(self, call_id: str) -> None:
        await self._control(call_id, sm.UnholdRequest(), sm.CallState.CONNECTED)

    async def hangup(self, call_id: str) -> None:
        await self._control(call_id, sm.HangupRequest(), sm.CallState.ENDED)

    # queue overflow and transfers (channels.voice.call_queue / .call_transfer)

    async def voicemail(self, call_id: str) -> None:
        """The caller leaves the queue for voicemail (the router's overflow)."""
        await self._control(call_id, sm.VoicemailRequest(), sm.CallState.VOICEMAIL)

    async def offer_callback(self, call_id: str) -> None:
        """The caller leaves the queue and is offered a callback (the router's overflow)."""
        await self._control(call_id, sm.CallbackOfferRequest(), sm.CallState.CALLBACK_OFFER)

    async def requeue(self, call_id: str) -> None:
        """Blind transfer, first half: the agent leaves, the caller is on MOH waiting for the
        next :meth:`connect_agent` (another agent or an external number)."""
        await self._control(call_id, sm.RequeueRequest(), sm.CallState.QUEUED)

    async def consult(self, call_id: str, endpoint: str, *, ring_timeout: int | None = None) -> str:
        """Attended transfer: caller on hold, ring ``endpoint``; returns the consult channel once
        it answered (it then talks to the agent) or raises :class:`AgentUnavailable`."""
        w = self._worker(call_id)
        if w.call.state not in (sm.CallState.CONNECTED, sm.CallState.HELD):
            raise PermanentChannelError(f"cannot consult from {w.call.state}",
                                        code="bad_call_state")  # fmt: skip
        leg = f"consult-{uuid.uuid4().hex[:16]}"
        self._owner[leg] = call_id
        w.offer = asyncio.get_running_loop().create_future()
        await w.inbox.put((sm.ConsultRequest(endpoint, leg,
                                             ring_timeout or self.settings.ring_timeout), None))
        return await w.offer

    async def complete_transfer(self, call_id: str) -> None:
        await self._control(call_id, sm.CompleteTransfer(), sm.CallState.CONNECTED)

    async def cancel_transfer(self, call_id: str) -> None:
        await self._control(call_id, sm.CancelTransfer(), sm.CallState.CONNECTED)

    async def pause_recording(self, call_id: str) -> None:
        """Stop writing the call recording (card numbers, health data) until resumed."""
        await self.ari.pause_recording(self._recording(call_id))

    async def resume_recording(self, call_id: str) -> None:
        await self.ari.unpause_recording(self._recording(call_id))

    def _recording(self, call_id: str) -> str:
        call = self._worker(call_id).call
        if call.state not in (sm.CallState.CONNECTED, sm.CallState.HELD) or not call.recording:
            raise PermanentChannelError(f"call is {call.state}, not recording",
                                        code="not_recording")  # fmt: skip
        return call.recording

    async def _control(self, call_id: str, inp: sm.Input, expect: sm.CallState) -> None:
        w = self._worker(call_id)
        done: asyncio.Future[tuple[sm.CallState, sm.Call]] = (
            asyncio.get_running_loop().create_future())
        await w.inbox.put((inp, done))
        before, call = await done
        if call.state is not expect or before is expect:
            raise PermanentChannelError(f"cannot go from {before} to {expect}",
                                        code="bad_call_state")  # fmt: skip

    def _worker(self, call_id: str) -> CallWorker:
        w = self._calls.get(call_id)
        if w is None or w.call.state is sm.CallState.ENDED:
            raise CallGone(f"no live call {call_id}")
        return w

    # --- routing ---------------------------------------------------------------------------

    def _route(self, event: ev.Event) -> str | None:
        if isinstance(event, ev.ChannelEvent):
            return self._owner.get(event.channel.id)
        if isinstance(event, ev.Dial):
            return self._owner.get(event.peer.id)
        if isinstance(event, ev.PlaybackStarted | ev.PlaybackFinished):
            return self._owner.get(event.playback.target_uri.partition(":")[2])
        if isinstance(event, ev.RecordingStarted | ev.RecordingFinished | ev.RecordingFailed):
            return self._owner.get(event.recording.target_uri.partition(":")[2])
        if isinstance(event, ev.BridgeDestroyed):
            return self._owner.get(event.bridge.id)
        return None

    def watch(self, key: str, handler: Callable[[ev.Event], Awaitable[None]]) -> None:
        """Send events about channel or bridge ``key`` to ``handler`` instead of a call worker
        (register before creating the channel, so its StasisStart is not taken for a caller)."""
        self._watchers[key] = handler

    def unwatch(self, key: str) -> None:
        self._watchers.pop(key, None)

    async def _dispatch(self, event: ev.Event) -> None:
        log.debug("ARI event %s", event)
        handler = self._watchers.get(event_target(event) or "")
        if handler is not None:
            await handler(event)
            return
        if isinstance(event, ev.StasisStart) and event.channel.id not in self._owner:
            role = event.args[0] if event.args else ""
            if role == "inbound":
                self._start(event.channel, event.timestamp, None)
                return
            if role == "agent":  # an agent leg whose call we no longer know: free the phone
                log.warning("hanging up orphan agent leg %s", event.channel.id)
                with contextlib.suppress(ChannelError):
                    await self.ari.hangup(event.channel.id)
            else:  # snoop channels etc. belong to whoever created them
                log.debug("ignoring %s channel %s", role or "unlabelled", event.channel.id)
            return
        call_id = self._route(event)
        if call_id is not None and call_id in self._calls:
            await self._calls[call_id].inbox.put((event, None))

    def _start(self, caller: ev.ChannelInfo, at: datetime,
               adopted: tuple[sm.Call, list[sm.Output]] | None) -> None:  # fmt: skip
        try:
            sender = caller_address(caller, self.settings.default_region)
        except ParseError as exc:
            log.warning("caller id is not a phone number (field=%s); treating as anonymous",
                        exc.field)  # fmt: skip
            sender = Address(AddressKind.PHONE, ANONYMOUS)
        call, outs = adopted or sm.new_call(caller.id, self.settings.ivr, self._clock())
        w = CallWorker(self, call, caller, sender, at)
        self._calls[caller.id] = w
        self._owner[caller.id] = caller.id
        if call.agent_channel:
            self._owner[call.agent_channel] = caller.id
        if call.bridge_id:
            self._owner[call.bridge_id] = caller.id
        log.info("call %s arrived", caller.id)
        w.start(outs)

    # --- reconciliation (channels.voice.reconcile) -----------------------------------------

    async def _reconcile(self) -> None:
        try:
            channels = await self.ari.list_channels()
            bridges = await self.ari.list_bridges()
        except ChannelError as exc:
            log.warning("reconcile skipped: %s", exc)
            return
        todo = plan(self.settings.app, channels, bridges, set(self._owner))
        for w in list(self._calls.values()):
            await w.inbox.put((sm.Resync(dict(todo.live)), None))
        for a in todo.adopt:
            adopted = sm.adopt_call(a.caller.id, self.settings.ivr, self._clock(),
                                    bridge_id=a.bridge_id, agent_channel=a.agent_channel)
            log.info("adopting call %s found in the app (%s)", a.caller.id, adopted[0].state)
            self._start(a.caller, datetime.now(UTC), adopted)
        for leg in todo.orphans:
            log.info("hanging up orphan agent leg %s", leg)
            with contextlib.suppress(ChannelError):
                await self.ari.hangup(leg)
