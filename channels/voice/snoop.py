"""Supervisor listen / whisper / barge on a live call, through ARI snoop channels.

A monitor session is: the supervisor's phone (a leg we originate into our app, args
``monitor,<id>,supervisor``), a mixing bridge of its own, and one snoop channel on the *agent's*
leg of the call in that bridge. The snoop's directions make the mode (:data:`MODES`):

- ``listen``: spy both directions, whisper nothing: the supervisor hears caller and agent.
- ``whisper``: also whisper ``out`` (towards the agent's phone): the agent hears the supervisor,
  the caller does not.
- ``barge``: whisper ``both``: what the supervisor says also goes into the call, so all three talk.

A snoop's directions cannot change, so switching modes creates the new snoop, puts it in the
bridge and only then hangs up the old one (no gap for the supervisor). The session ends when the
supervisor hangs up, the monitored call ends (Asterisk destroys the snoop with its channel) or
the hub stops it; ``on_end`` is called once with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.base import ChannelError, PermanentChannelError
from channels.voice import events as ev
from channels.voice.ari import AriConflict, AriNotFound
from channels.voice.call import FAILED_DIAL, hangup_reason
from channels.voice.channel import VoiceChannel

log = logging.getLogger(__name__)

ROLE = "monitor"
# mode -> (spy, whisper) of the snoop channel on the agent's leg
MODES: dict[str, tuple[str, str]] = {
    "listen": ("both", "none"),
    "whisper": ("both", "out"),
    "barge": ("both", "both"),
}


class MonitorError(PermanentChannelError):
    """The supervisor's phone did not answer, or the call to monitor is not there."""

    code = "monitor_failed"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise MonitorError(f"unknown monitor mode {mode!r} (listen, whisper, barge)",
                           code="bad_mode")
    return mode


@dataclass(eq=False)
class MonitorSession:
    id: str
    target: str  # the agent's channel of the monitored call
    endpoint: str  # the supervisor's phone
    mode: str
    on_end: Callable[[MonitorSession, str], Awaitable[None]]
    supervisor: str = ""
    bridge: str = ""
    snoop: str | None = None
    ended: str | None = None  # why it ended
    events: asyncio.Queue[ev.Event] = field(default_factory=asyncio.Queue)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None


class Monitors:
    """Monitor sessions on one voice channel."""

    def __init__(self, channel: VoiceChannel, *, answer_timeout: float | None = None) -> None:
        self.channel = channel
        self.answer_timeout = answer_timeout or float(channel.settings.ring_timeout)
        self._sessions: dict[str, MonitorSession] = {}
        channel.reconnect_hooks.append(self.resync)

    def session(self, monitor_id: str) -> MonitorSession | None:
        return self._sessions.get(monitor_id)

    async def start(self, target_channel: str, endpoint: str, mode: str,
                    on_end: Callable[[MonitorSession, str], Awaitable[None]]) -> MonitorSession:
        """Ring the supervisor's ``endpoint``; on answer bridge it with a snoop on
        ``target_channel`` in ``mode``. Returns the live session; raises :class:`MonitorError`
        (``supervisor_noanswer`` / ``supervisor_busy`` / ``target_gone``...)."""
        check_mode(mode)
        mid = uuid.uuid4().hex[:16]
        s = MonitorSession(mid, target_channel, endpoint, mode, on_end,
                           supervisor=f"mon-{mid}-s", bridge=f"bridge-mon-{mid}")
        for key in (s.supervisor, s.bridge):
            self.channel.watch(key, s.events.put)
        self._sessions[mid] = s
        try:
            await self._connect(s)
        except BaseException:
            await self._cleanup(s)
            raise
        s.task = asyncio.create_task(self._watch(s), name=f"voice-monitor-{mid}")
        return s

    async def set_mode(self, monitor_id: str, mode: str) -> MonitorSession:
        check_mode(mode)
        s = self._live(monitor_id)
        async with s.lock:
            if s.ended is None and mode != s.mode:
                old = s.snoop
                await self._snoop(s, mode)
                if old is not None:
                    self.channel.unwatch(old)
                    with contextlib.suppress(ChannelError):
                        await self.channel.ari.hangup(old)
                s.mode = mode
        return s

    async def stop(self, monitor_id: str, reason: str = "stopped") -> None:
        s = self._live(monitor_id)
        await self._finish(s, reason)

    async def resync(self) -> None:
        """After an events reconnect: end sessions whose phone or snoop went away meanwhile, and
        hang up monitor legs nobody here runs (left over from before a restart)."""
        channels = await self.channel.ari.list_channels()
        live = {c.id for c in channels}
        known: set[str] = set()
        for s in list(self._sessions.values()):
            legs = {s.supervisor, *([s.snoop] if s.snoop else [])}
            known |= legs
            if s.task is not None and not legs <= live:
                await self._finish(s, "lost")
        prefix = f"{self.channel.settings.app},{ROLE},"
        for c in channels:
            if c.app_data.startswith(prefix) and c.id not in known:
                log.warning("hanging up monitor leg %s nobody runs", c.id)
                with contextlib.suppress(ChannelError):
                    await self.channel.ari.hangup(c.id)
        bridges = {s.bridge for s in self._sessions.values()}
        for b in await self.channel.ari.list_bridges():
            if b.id.startswith("bridge-mon-") and b.id not in bridges:
                with contextlib.suppress(ChannelError):
                    await self.channel.ari.destroy_bridge(b.id)

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self.channel.reconnect_hooks.remove(self.resync)
        for s in list(self._sessions.values()):
            if s.task is not None:
                s.task.cancel()
            with contextlib.suppress(Exception):
                await self._cleanup(s)

    def _live(self, monitor_id: str) -> MonitorSession:
        s = self._sessions.get(monitor_id)
        if s is None or s.ended is not None:
            raise MonitorError(f"no live monitor session {monitor_id}", code="no_monitor")
        return s

    # --- steps --------------------------------------------------------------------------------

    async def _connect(self, s: MonitorSession) -> None:
        ari, app = self.channel.ari, self.channel.settings.app
        try:
            await ari.get_channel(s.target)
        except AriNotFound:
            raise MonitorError("the call to monitor is over", code="target_gone") from None
        await ari.create_channel(s.endpoint, app, app_args=(ROLE, s.id, "supervisor"),
                                 channel_id=s.supervisor)
        await self._wait(s, lambda e: isinstance(e, ev.StasisStart), 5.0, "supervisor_unreachable")
        for attempt in range(10):  # StasisStart seen; Asterisk may still answer 409 briefly
            try:
                await ari.dial(s.supervisor, ring_timeout=int(self.answer_timeout) + 5)
                break
            except AriConflict:
                if attempt == 9:
                    raise
                await asyncio.sleep(0.05)

        def answered(e: ev.Event) -> bool:
            if isinstance(e, ev.Dial) and e.dialstatus in FAILED_DIAL:
                raise MonitorError(f"the supervisor's phone: {e.dialstatus.lower()}",
                                   code=f"supervisor_{e.dialstatus.lower()}")
            if isinstance(e, ev.ChannelHangupRequest | ev.ChannelDestroyed | ev.StasisEnd):
                why = hangup_reason(e) if not isinstance(e, ev.StasisEnd) else "hangup"
                raise MonitorError(f"the supervisor's phone: {why}", code=f"supervisor_{why}")
            return (isinstance(e, ev.Dial) and e.dialstatus == "ANSWER") or (
                isinstance(e, ev.ChannelStateChange) and e.channel.state == "Up")

        await self._wait(s, answered, self.answer_timeout, "supervisor_noanswer")
        await ari.create_bridge(s.bridge, bridge_type="mixing", name=s.bridge)
        await ari.add_channel(s.bridge, [s.supervisor])
        await self._snoop(s, s.mode)

    async def _snoop(self, s: MonitorSession, mode: str) -> None:
        spy, whisper = MODES[mode]
        snoop_id = f"mon-{s.id}-{uuid.uuid4().hex[:6]}"
        in_app: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_event(e: ev.Event) -> None:
            if isinstance(e, ev.StasisStart) and not in_app.done():
                in_app.set_result(None)
            await s.events.put(e)

        self.channel.watch(snoop_id, on_event)
        try:
            await self.channel.ari.snoop(s.target, self.channel.settings.app, spy=spy,
                                         whisper=whisper, app_args=(ROLE, s.id, "snoop"),
                                         snoop_id=snoop_id)
        except AriNotFound:
            self.channel.unwatch(snoop_id)
            raise MonitorError("the call to monitor is over", code="target_gone") from None
        try:  # the snoop enters the app asynchronously; only then can it join a bridge
            await asyncio.wait_for(in_app, 5.0)
        except TimeoutError:
            self.channel.unwatch(snoop_id)
            with contextlib.suppress(ChannelError):
                await self.channel.ari.hangup(snoop_id)
            raise MonitorError("the snoop channel never entered the app",
                               code="snoop_failed") from None
        await self.channel.ari.add_channel(s.bridge, [snoop_id])
        s.snoop = snoop_id

    async def _wait(self, s: MonitorSession, pred: Callable[[ev.Event], bool], limit_s: float,
                    code: str) -> None:
        try:
            async with asyncio.timeout(limit_s):
                while not pred(await s.events.get()):
                    pass
        except TimeoutError:
            raise MonitorError(f"monitor: {code}", code=code) from None

    async def _watch(self, s: MonitorSession) -> None:
        """End the session when the supervisor or the monitored call goes away."""
        try:
            while s.ended is None:
                e = await s.events.get()
                if not isinstance(e, ev.StasisEnd | ev.ChannelDestroyed):
                    continue
                if e.channel.id == s.supervisor:
                    await self._finish(s, "supervisor_hangup")
                elif e.channel.id == s.snoop:
                    await self._finish(s, "call_ended")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("monitor %s watcher failed", s.id)

    async def _finish(self, s: MonitorSession, reason: str) -> None:
        async with s.lock:
            if s.ended is not None:
                return
            s.ended = reason
        log.info("monitor %s ended: %s", s.id, reason)
        await self._cleanup(s)
        if s.task is not None and s.task is not asyncio.current_task():
            s.task.cancel()
        try:
            await s.on_end(s, reason)
        except Exception:
            log.exception("monitor %s: on_end failed", s.id)

    async def _cleanup(self, s: MonitorSession) -> None:
        self._sessions.pop(s.id, None)  # first: it is over for everyone asking from now on
        ari = self.channel.ari
        for chan in (s.snoop, s.supervisor):
            if chan:
                with contextlib.suppress(ChannelError):
                    await ari.hangup(chan)
        with contextlib.suppress(ChannelError):
            await ari.destroy_bridge(s.bridge)
        for key in (s.supervisor, s.bridge, s.snoop or ""):
            self.channel.unwatch(key)
