"""Voice channel: inbound calls through Asterisk's REST interface (ARI).

Theory of operation
-------------------
Asterisk's dialplan hands every inbound call to our Stasis app (``Stasis(<app>,inbound,<exten>)``).
From then on Asterisk does nothing on its own: each call is driven by events we receive on the ARI
WebSocket and by REST calls we make.

- :func:`channels.voice.stream.event_stream` keeps the WebSocket open (reconnect with backoff) and
  yields parsed, typed events (:mod:`channels.voice.events`).
- Each call gets a worker task with an inbox. The run loop only routes events to inboxes (by
  channel, bridge, playback or recording id), so a slow call never delays another.
- A worker feeds its inputs to the pure state machine :func:`channels.voice.call.step` and
  executes what comes out: ARI actions (answer, play, MOH, create/dial the agent leg, bridge,
  record, hang up) in order, and notices for the hub (queued, agent answered/failed, ended,
  recording ready) which become :class:`Inbound` items for the sink or resolve the hub's calls.
- The hub drives calls with :meth:`VoiceChannel.connect_agent` (originate to the agent's PJSIP
  endpoint; returns on answer, raises :class:`AgentUnavailable` on no answer / busy while the caller
  keeps hearing music on hold), :meth:`hold`, :meth:`unhold`, :meth:`hangup` and
  :meth:`pause_recording` / :meth:`resume_recording`.
- After every (re)connect the channel reconciles: known calls get a ``Resync`` with the channels
  ARI still has (caller back to MOH, lost agent legs reported); callers found in the app that we
  do not know (hub restart) are adopted, either into their existing bridge or back to the queue.
  Nobody is left in silence.

Timings come from an injected monotonic clock; wall-clock times on Inbound come from the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.base import (
    Address,
    AddressKind,
    ChannelError,
    ChannelKind,
    Inbound,
    Outbound,
    ParseError,
    PermanentChannelError,
    SendResult,
    Sink,
    TransientChannelError,
)
from channels.voice import call as sm
from channels.voice import events as ev
from channels.voice.actions import execute
from channels.voice.ari import AriClient
from channels.voice.inbound import (
    ANONYMOUS,
    call_inbound,
    caller_address,
    end_inbound,
)
from channels.voice.ivr import IvrConfig
from channels.voice.outbound import event_target
from channels.voice.stream import Backoff, Connected, event_stream
from channels.voice.voicemail import leg_recording_inbound, voicemail_inbound

log = logging.getLogger(__name__)


class AgentUnavailable(PermanentChannelError):
    """The offered agent did not take the call; ``reason`` is noanswer, busy, hangup, ..."""

    code = "agent_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(f"agent did not answer: {reason}")
        self.reason = reason


class CallGone(PermanentChannelError):
    code = "call_gone"


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    ari_url: str  # http://host:8088/ari
    user: str
    password: str
    app: str = "contacthub"
    channel_id: str = "voice"
    ivr: IvrConfig = field(default_factory=IvrConfig)
    ring_timeout: int = 15
    default_region: str = "US"
    delete_recordings: bool = True  # once the sink has the WAV, Asterisk's copy goes
    recording_wait_s: float = 30.0  # how long an ended call waits for its recording


@dataclass(eq=False)
class _Worker:
    call: sm.Call
    caller: ev.ChannelInfo
    sender: Address
    received_at: datetime
    # inputs, each with an optional future answered with (state before, call after)
    inbox: asyncio.Queue[tuple[sm.Input, asyncio.Future[tuple[sm.CallState, sm.Call]] | None]]
    offer: asyncio.Future[str] | None = None
    task: asyncio.Task[None] | None = None


class VoiceChannel:
    """A running ARI Stasis app; see the module docstring."""

    kind = ChannelKind.VOICE

    def __init__(self, settings: VoiceSettings, *, ari: AriClient | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.channel_id = settings.channel_id
        self.ari = ari or AriClient(settings.ari_url, settings.user, settings.password)
        self._clock = clock
        self._backoff = backoff
        self._sink: Sink | None = None
        self._calls: dict[str, _Worker] = {}
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
                                           backoff=self._backoff):
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

    # --- hub-facing controls ---------------------------------------------------------------

    async def connect_agent(self, call_id: str, agent_endpoint: str, *,
                            ring_timeout: int | None = None) -> str:
        """Ring ``agent_endpoint`` (e.g. ``PJSIP/agent1``) and bridge it with the caller.

        Returns the agent channel id once bridged and recording; raises :class:`AgentUnavailable`
        (caller still queued, still hearing MOH) or :class:`CallGone`.
        """
        w = self._worker(call_id)
        if w.offer is not None and not w.offer.done():
            raise PermanentChannelError("an offer is already ringing", code="offer_pending")
        agent = f"agent-{uuid.uuid4().hex[:16]}"
        self._owner[agent] = call_id
        w.offer = asyncio.get_running_loop().create_future()
        timeout = ring_timeout or self.settings.ring_timeout
        await w.inbox.put((sm.Offer(agent_endpoint, agent, timeout), None))
        return await w.offer

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
                                        code="bad_call_state")
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

    async def _queue_news(self, w: _Worker) -> sm.QueueStatus | None:
        """Ask the hub where a queued call stands, only when an announcement is due."""
        call, provider = w.call, self.queue_status
        if (provider is None or call.state is not sm.CallState.QUEUED or call.deadline is None
                or self._clock() < call.deadline):
            return None
        try:
            async with asyncio.timeout(2.0):
                return await provider(call.id)
        except Exception:
            log.exception("call %s: queue status unavailable", call.id)
            return None

    async def pause_recording(self, call_id: str) -> None:
        """Stop writing the call recording (card numbers, health data) until resumed."""
        await self.ari.pause_recording(self._recording(call_id))

    async def resume_recording(self, call_id: str) -> None:
        await self.ari.unpause_recording(self._recording(call_id))

    def _recording(self, call_id: str) -> str:
        call = self._worker(call_id).call
        if call.state not in (sm.CallState.CONNECTED, sm.CallState.HELD) or not call.recording:
            raise PermanentChannelError(f"call is {call.state}, not recording",
                                        code="not_recording")
        return call.recording

    async def _control(self, call_id: str, inp: sm.Input, expect: sm.CallState) -> None:
        w = self._worker(call_id)
        done: asyncio.Future[tuple[sm.CallState, sm.Call]] = (
            asyncio.get_running_loop().create_future())
        await w.inbox.put((inp, done))
        before, call = await done
        if call.state is not expect or before is expect:
            raise PermanentChannelError(f"cannot go from {before} to {expect}",
                                        code="bad_call_state")

    def _worker(self, call_id: str) -> _Worker:
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
               adopted: tuple[sm.Call, list[sm.Output]] | None) -> None:
        try:
            sender = caller_address(caller, self.settings.default_region)
        except ParseError as exc:
            log.warning("caller id is not a phone number (field=%s); treating as anonymous",
                        exc.field)
            sender = Address(AddressKind.PHONE, ANONYMOUS)
        now = self._clock()
        call, outs = adopted or sm.new_call(caller.id, self.settings.ivr, now)
        w = _Worker(call=call, caller=caller, sender=sender, received_at=at,
                    inbox=asyncio.Queue())
        self._calls[caller.id] = w
        self._owner[caller.id] = caller.id
        if call.agent_channel:
            self._owner[call.agent_channel] = caller.id
        if call.bridge_id:
            self._owner[call.bridge_id] = caller.id
        log.info("call %s arrived", caller.id)
        w.task = asyncio.create_task(self._work(w, outs), name=f"voice-call-{caller.id}")

    # --- per-call worker -------------------------------------------------------------------

    async def _work(self, w: _Worker, first: list[sm.Output]) -> None:
        try:
            await self._perform(w, first)
            while not w.call.finished:
                timeout: float | None = None
                if w.call.state is sm.CallState.ENDED:
                    timeout = self.settings.recording_wait_s
                elif w.call.deadline is not None:
                    timeout = max(0.0, w.call.deadline - self._clock())
                before = w.call.state
                try:
                    inp, done = await asyncio.wait_for(w.inbox.get(), timeout)
                except TimeoutError:
                    if w.call.state is sm.CallState.ENDED:
                        log.warning("call %s: recording never finished", w.call.id)
                        break
                    inp, done = sm.Tick(await self._queue_news(w)), None
                await self._apply(w, inp)
                if done is not None and not done.done():
                    done.set_result((before, w.call))
        except Exception:
            log.exception("call %s worker failed", w.call.id)
        finally:
            self._forget(w)

    def _forget(self, w: _Worker) -> None:
        for key in [k for k, v in self._owner.items() if v == w.call.id]:
            del self._owner[key]
        self._calls.pop(w.call.id, None)
        if w.offer is not None and not w.offer.done():
            w.offer.set_exception(CallGone(f"call {w.call.id} ended"))
        while not w.inbox.empty():
            _inp, done = w.inbox.get_nowait()
            if done is not None and not done.done():
                done.set_result((w.call.state, w.call))

    async def _apply(self, w: _Worker, inp: sm.Input) -> None:
        call, outs = sm.step(w.call, inp, self._clock())
        if call.state is not w.call.state:
            log.info("call %s: %s -> %s", call.id, w.call.state, call.state)
        w.call = call
        await self._perform(w, outs)

    async def _perform(self, w: _Worker, outs: list[sm.Output]) -> None:
        failed: list[sm.ActionFailed] = []
        # A new call straight to the queue (no IVR menu): the hub's ingest and routing take
        # longer than answering and starting MOH, so the Queued notice goes out with the Answer
        # (ring time). The worker still waits for it where it stands, so notices keep their
        # order and no input (the hub's offer) is taken before MOH started. After an IVR the
        # notice keeps following the prompt's stop and MOH, as before.
        early: tuple[sm.Notice, asyncio.Task[None]] | None = None
        first = next((o for o in outs if isinstance(o, sm.Notice)), None)
        if isinstance(first, sm.Queued) and outs and isinstance(outs[0], sm.Answer):
            early = first, asyncio.create_task(self._notice(w, first))
        try:
            for out in outs:
                if isinstance(out, sm.Notice):
                    if early is not None and out is early[0]:
                        await early[1]
                    else:
                        await self._notice(w, out)
                    continue
                await self._act(w, out, failed)
        finally:
            if early is not None and not early[1].done():
                early[1].cancel()
        for f in failed:
            await self._apply(w, f)

    async def _act(self, w: _Worker, out: sm.Action, failed: list[sm.ActionFailed]) -> None:
        """Perform one ARI action; a failure is collected for the state machine."""
        if isinstance(out, sm.CreateAgentLeg):
            self._owner[out.channel] = w.call.id
        elif isinstance(out, sm.Bridge):
            self._owner[out.bridge_id] = w.call.id
        try:
            await execute(self.ari, self.settings.app, out)
        except ChannelError as exc:
            log.warning("call %s: %s failed: %s", w.call.id, type(out).__name__, exc)
            failed.append(sm.ActionFailed(out, exc.code))

    async def _notice(self, w: _Worker, notice: sm.Notice) -> None:
        s = self.settings
        now = datetime.now(UTC)
        if isinstance(notice, sm.Queued):
            await self._emit(call_inbound(w.call, w.caller, w.sender, channel_id=s.channel_id,
                                          received_at=w.received_at))
        elif isinstance(notice, sm.AgentAnswered):
            if w.offer is not None and not w.offer.done():
                w.offer.set_result(notice.agent_channel)
        elif isinstance(notice, sm.AgentFailed):
            if w.offer is not None and not w.offer.done():
                w.offer.set_exception(AgentUnavailable(notice.reason))
        elif isinstance(notice, sm.Ended):
            log.info("call %s ended (%s, abandoned=%s)", w.call.id, notice.reason,
                     notice.abandoned)
            await self._emit(end_inbound(w.call, w.sender, channel_id=s.channel_id,
                                         received_at=now, abandoned=notice.abandoned,
                                         wait_s=notice.wait_s))
        elif isinstance(notice, sm.RecordingReady | sm.VoicemailReady):
            try:
                wav = await self.ari.fetch_recording_file(notice.name)
            except ChannelError as exc:
                log.error("call %s: recording %s not fetched: %s", w.call.id, notice.name, exc)
                return
            make = (voicemail_inbound if isinstance(notice, sm.VoicemailReady)
                    else leg_recording_inbound)
            await self._emit(make(w.call, w.sender, notice.name, wav, channel_id=s.channel_id,
                                  received_at=now))
            if s.delete_recordings:
                with contextlib.suppress(ChannelError):
                    await self.ari.delete_stored_recording(notice.name)

    async def _emit(self, inbound: Inbound) -> None:
        """Hand an item to the sink, retrying transient failures; never raise into the call."""
        if self._sink is None:
            return
        for attempt in range(4):
            try:
                await self._sink(inbound)
                return
            except TransientChannelError as exc:
                log.warning("sink busy for %s (%s), retry %d", inbound.external_id, exc, attempt)
                await asyncio.sleep(0.2 * 2**attempt)
            except Exception:
                log.exception("sink rejected %s", inbound.external_id)
                return
        log.error("sink never took %s", inbound.external_id)

    # --- reconciliation --------------------------------------------------------------------

    async def _reconcile(self) -> None:
        try:
            channels = await self.ari.list_channels()
            bridges = await self.ari.list_bridges()
        except ChannelError as exc:
            log.warning("reconcile skipped: %s", exc)
            return
        live = {c.id: c.state for c in channels}
        for w in list(self._calls.values()):
            await w.inbox.put((sm.Resync(dict(live)), None))
        in_bridge = {cid: b for b in bridges for cid in b.channels}
        prefix = f"{self.settings.app},"
        for c in channels:
            if c.id in self._owner or c.app_name != "Stasis" or not c.app_data.startswith(prefix):
                continue
            role = c.app_data[len(prefix):].partition(",")[0]
            if role == "inbound":
                bridge = in_bridge.get(c.id)
                others = [x for x in bridge.channels if x != c.id] if bridge else []
                adopted = sm.adopt_call(
                    c.id, self.settings.ivr, self._clock(),
                    bridge_id=bridge.id if bridge and others else None,
                    agent_channel=others[0] if others else None,
                )
                log.info("adopting call %s found in the app (%s)", c.id, adopted[0].state)
                self._start(c, datetime.now(UTC), adopted)
        for c in channels:  # agent legs nobody owns any more
            if (c.app_data.startswith(f"{prefix}agent") and c.id not in self._owner):
                log.info("hanging up orphan agent leg %s", c.id)
                with contextlib.suppress(ChannelError):
                    await self.ari.hangup(c.id)

