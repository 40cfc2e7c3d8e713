"""Runs click-to-calls on a :class:`VoiceChannel`: one worker per call, like inbound calls.

The channel's event loop hands every event about a call's legs and bridge to that call's inbox
(:meth:`VoiceChannel.watch`); the worker feeds them to the pure :func:`channels.voice.outbound.step`
and performs what comes out, in order. Notices go to the ``report`` callback the hub passed to
:meth:`Dialer.dial`, awaited in order, so the hub's timeline is in call order. When the
recording finished the worker fetches the WAV over ARI and reports it as :class:`Recorded`
(Asterisk's copy is deleted once the report returned, if the channel is set to).

After an events reconnect (:meth:`Dialer.resync`, a reconnect hook of the channel) a leg that
vanished while nobody listened is reported gone to its call. Outbound calls are not adopted
across a hub restart: legs of calls this process does not run are hung up on connect (the hub
resolves their conversations as lost).
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

from channels.base import ChannelError, PermanentChannelError
from channels.voice import events as ev
from channels.voice import recordings
from channels.voice.actions import execute
from channels.voice.ari import AriConflict
from channels.voice.channel import CallGone, VoiceChannel
from channels.voice.commands import ActionFailed, HangupRequest, RecordingReady, Tick
from channels.voice.outbound import (
    ROLE,
    CreateLeg,
    DialLeg,
    OutAction,
    OutboundCall,
    OutInput,
    OutNotice,
    OutOutput,
    OutState,
    new_outbound,
    step,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recorded:
    """The call's recording (WAV bytes), fetched from Asterisk."""

    name: str
    wav: bytes


Report = Callable[[OutboundCall, OutNotice | Recorded], Awaitable[None]]


@dataclass(eq=False)
class _Out:
    call: OutboundCall
    report: Report
    inbox: asyncio.Queue[tuple[OutInput, asyncio.Future[OutState] | None]] = field(
        default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class Dialer:
    """Click-to-call on one voice channel (its ARI connection and Stasis app)."""

    def __init__(self, channel: VoiceChannel, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.channel = channel
        self._clock = clock
        self._calls: dict[str, _Out] = {}
        channel.reconnect_hooks.append(self.resync)

    def call(self, call_id: str) -> OutboundCall | None:
        w = self._calls.get(call_id)
        return w.call if w else None

    def calls(self) -> dict[str, OutboundCall]:
        return {cid: w.call for cid, w in self._calls.items()}

    async def dial(self, *, agent_endpoint: str, customer_endpoint: str, number: str,
                   report: Report, ring_timeout: int | None = None,
                   customer_ring_timeout: int = 30, call_id: str | None = None) -> OutboundCall:
        """Start ringing the agent; returns at once with the new call (progress goes to
        ``report``). Raises :class:`PermanentChannelError` ``voice_not_connected`` when the
        channel's ARI events are down (nothing would hear the legs answer)."""
        if not self.channel.connected.is_set():
            raise PermanentChannelError("the voice channel is not connected to Asterisk",
                                        code="voice_not_connected")
        cid = call_id or uuid.uuid4().hex[:16]
        timeout = ring_timeout or self.channel.settings.ring_timeout
        call, outs = new_outbound(cid, agent_endpoint=agent_endpoint,
                                  customer_endpoint=customer_endpoint, number=number,
                                  ring_timeout=timeout,
                                  customer_ring_timeout=customer_ring_timeout,
                                  now=self._clock())
        w = _Out(call, report)
        self._calls[cid] = w
        for key in (call.agent_channel, call.customer_channel, call.bridge_id):
            self.channel.watch(key, self._deliver(w))
        log.info("outbound call %s: ringing the agent", cid)
        w.task = asyncio.create_task(self._work(w, outs), name=f"voice-out-{cid}")
        return call

    async def hangup(self, call_id: str, reason: str = "hub") -> None:
        w = self._calls.get(call_id)
        if w is None or w.call.state is OutState.ENDED:
            raise CallGone(f"no live outbound call {call_id}")
        done: asyncio.Future[OutState] = asyncio.get_running_loop().create_future()
        await w.inbox.put((HangupRequest(reason), done))
        await done

    async def resync(self) -> None:
        """Tell calls about legs that went away while the events stream was down; hang up
        outbound legs nobody here runs (left over from before a restart)."""
        channels = await self.channel.ari.list_channels()
        live = {c.id for c in channels}
        known: set[str] = set()
        for w in list(self._calls.values()):
            call = w.call
            known |= {call.agent_channel, call.customer_channel}
            must_live = {OutState.CUSTOMER_RINGING: (call.agent_channel,),
                         OutState.CONNECTED: (call.agent_channel, call.customer_channel)}
            for leg in must_live.get(call.state, ()):
                if leg not in live:
                    log.info("outbound call %s: leg %s vanished meanwhile", call.id, leg)
                    await w.inbox.put((_vanished(self.channel.settings.app, leg), None))
        prefix = f"{self.channel.settings.app},{ROLE},"
        for c in channels:
            if c.app_data.startswith(prefix) and c.id not in known:
                log.warning("hanging up outbound leg %s of a call nobody runs", c.id)
                with contextlib.suppress(ChannelError):
                    await self.channel.ari.hangup(c.id)
        bridges = {w.call.bridge_id for w in self._calls.values()}
        for b in await self.channel.ari.list_bridges():
            if b.id.startswith("bridge-out-") and b.id not in bridges:
                with contextlib.suppress(ChannelError):
                    await self.channel.ari.destroy_bridge(b.id)

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self.channel.reconnect_hooks.remove(self.resync)
        for w in list(self._calls.values()):
            if w.task is not None:
                w.task.cancel()
        await asyncio.gather(*(w.task for w in self._calls.values() if w.task),
                             return_exceptions=True)

    @staticmethod
    def _deliver(w: _Out) -> Callable[[ev.Event], Awaitable[None]]:
        async def put(event: ev.Event) -> None:
            await w.inbox.put((event, None))
        return put

    # --- worker -----------------------------------------------------------------------------

    async def _work(self, w: _Out, first: list[OutOutput]) -> None:
        try:
            await self._perform(w, first)
            s = self.channel.settings
            ended_at: float | None = None
            while not w.call.finished:
                timeout: float | None = None
                if w.call.state is OutState.ENDED:
                    # ask ARI when the recording's event is late: it can be lost
                    # (channels.voice.recordings)
                    ended_at = self._clock() if ended_at is None else ended_at
                    timeout = recordings.next_check_s(s, ended_at, self._clock())
                elif w.call.deadline is not None:
                    timeout = max(0.0, w.call.deadline - self._clock())
                try:
                    inp, done = await asyncio.wait_for(w.inbox.get(), timeout)
                except TimeoutError:
                    if ended_at is None:
                        inp, done = Tick(), None
                    else:
                        settled = await recordings.settle(self.channel.ari, w.call.recording)
                        if settled is not None:
                            log.info("outbound call %s: recording ended without its event (%s)",
                                     w.call.id, "stored" if settled.stored else "no file")
                            await self._apply(w, settled)
                            continue
                        if self._clock() - ended_at < s.recording_wait_s:
                            continue
                        log.warning("outbound call %s: recording never finished", w.call.id)
                        break
                await self._apply(w, inp)
                if done is not None and not done.done():
                    done.set_result(w.call.state)
        except Exception:
            log.exception("outbound call %s worker failed", w.call.id)
        finally:
            for key in (w.call.agent_channel, w.call.customer_channel, w.call.bridge_id):
                self.channel.unwatch(key)
            self._calls.pop(w.call.id, None)
            while not w.inbox.empty():
                _inp, done = w.inbox.get_nowait()
                if done is not None and not done.done():
                    done.set_result(w.call.state)

    async def _apply(self, w: _Out, inp: OutInput) -> None:
        call, outs = step(w.call, inp, self._clock())
        if call.state is not w.call.state:
            log.info("outbound call %s: %s -> %s", call.id, w.call.state, call.state)
        w.call = call
        await self._perform(w, outs)

    async def _perform(self, w: _Out, outs: list[OutOutput]) -> None:
        failed: list[ActionFailed] = []
        for out in outs:
            if isinstance(out, RecordingReady):
                await self._recorded(w, out.name)
            elif isinstance(out, OutNotice):
                await self._report(w, out)
            else:
                try:
                    await self._act(out)
                except ChannelError as exc:
                    log.warning("outbound call %s: %s failed: %s", w.call.id,
                                type(out).__name__, exc)
                    failed.append(ActionFailed(out, exc.code))  # type: ignore[arg-type]
        for f in failed:
            await self._apply(w, f)

    async def _act(self, action: OutAction) -> None:
        ari, app = self.channel.ari, self.channel.settings.app
        if isinstance(action, CreateLeg):
            await ari.create_channel(action.endpoint, app,
                                     app_args=(ROLE, action.call_id, action.leg),
                                     channel_id=action.channel)
        elif isinstance(action, DialLeg):
            # StasisStart was seen, but Asterisk may still refuse for a moment (409)
            for attempt in range(10):
                try:
                    await ari.dial(action.channel, ring_timeout=action.ring_timeout)
                    return
                except AriConflict:
                    if attempt == 9:
                        raise
                    await asyncio.sleep(0.05)
        else:
            await execute(ari, app, action)

    async def _report(self, w: _Out, notice: OutNotice | Recorded) -> None:
        try:
            await w.report(w.call, notice)
        except Exception:
            log.exception("outbound call %s: reporting %s failed", w.call.id,
                          type(notice).__name__)

    async def _recorded(self, w: _Out, name: str) -> None:
        try:
            wav = await self.channel.ari.fetch_recording_file(name)
        except ChannelError as exc:
            log.error("outbound call %s: recording %s not fetched: %s", w.call.id, name, exc)
            return
        await self._report(w, Recorded(name, wav))
        if self.channel.settings.delete_recordings:
            with contextlib.suppress(ChannelError):
                await self.channel.ari.delete_stored_recording(name)


def _vanished(app: str, channel_id: str) -> ev.StasisEnd:
    """What a call would have heard had the events stream been up: the leg left the app."""
    info = ev.ChannelInfo(channel_id, "", "", ev.CallerId("", ""), ev.CallerId("", ""))
    return ev.StasisEnd("StasisEnd", app, datetime.now(UTC), info)
