"""One inbound call's worker: feeds its inputs to the state machine and carries out the outputs.

The channel's run loop only routes events into each call's inbox, so a slow call never delays
another. The worker applies one input at a time (:func:`channels.voice.call.step`) and performs
what comes out in order: ARI actions (a failure goes back in as ``ActionFailed``) and notices for
the hub (items for the sink, or the answer to the hub's pending ``connect_agent``).

Items for the sink go out strictly in the call's order (queued, then ended, then recordings), but
the worker does not wait for the ``call`` item (ingest, then routing) before taking its next
input: the hub's offer for this very call arrives while that item is still being handed over
(the hub rings the agent as soon as its router decided), and waiting would put the whole
ingest-and-route round trip back on the ring time. For the same reason a new call's answer
and MOH requests run beside the worker: the agent's originate does not queue behind them (the
caller's other actions do; see ``CallWorker._act``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast

from channels.base import Address, ChannelError, Inbound, Sink, TransientChannelError
from channels.voice import call as sm
from channels.voice import events as ev
from channels.voice import recordings
from channels.voice.actions import execute
from channels.voice.ari import AriClient
from channels.voice.inbound import call_inbound, end_inbound
from channels.voice.settings import AgentUnavailable, CallGone, VoiceSettings
from channels.voice.voicemail import leg_recording_inbound, voicemail_inbound

log = logging.getLogger(__name__)

Done = asyncio.Future[tuple[sm.CallState, sm.Call]]  # answered with (state before, call after)


class WorkerHost(Protocol):
    """What a worker needs from its channel."""

    settings: VoiceSettings
    ari: AriClient
    queue_status: Callable[[str], Awaitable[sm.QueueStatus | None]] | None

    def now(self) -> float: ...

    def sink(self) -> Sink | None: ...

    def own(self, key: str, call_id: str) -> None:
        """Route events about channel / bridge ``key`` to call ``call_id``."""

    def forget(self, worker: CallWorker) -> None:
        """The worker is done: drop its routes."""


@dataclass(eq=False)
class CallWorker:
    host: WorkerHost
    call: sm.Call
    caller: ev.ChannelInfo
    sender: Address
    received_at: datetime
    inbox: asyncio.Queue[tuple[sm.Input, Done | None]] = field(default_factory=asyncio.Queue)
    offer: asyncio.Future[str] | None = None  # the hub's pending connect_agent / consult
    task: asyncio.Task[None] | None = None
    emitting: asyncio.Task[None] | None = None  # the latest item handed to the sink
    setup: asyncio.Task[list[sm.ActionFailed]] | None = None  # a new call's answer and MOH

    def start(self, first: list[sm.Output]) -> None:
        self.task = asyncio.create_task(self._run(first), name=f"voice-call-{self.call.id}")

    async def _run(self, first: list[sm.Output]) -> None:
        try:
            await self._perform(first)
            ended_at: float | None = None
            while not self.call.finished:
                timeout: float | None = None
                if self.call.state is sm.CallState.ENDED:
                    ended_at = self.host.now() if ended_at is None else ended_at
                    timeout = recordings.next_check_s(self.host.settings, ended_at,
                                                      self.host.now())
                elif self.call.deadline is not None:
                    timeout = max(0.0, self.call.deadline - self.host.now())
                before = self.call.state
                try:
                    inp, done = await asyncio.wait_for(self.inbox.get(), timeout)
                except TimeoutError:
                    if ended_at is not None:
                        if await self._check_recordings(ended_at):
                            continue
                        log.warning("call %s: recording never finished", self.call.id)
                        break
                    inp, done = sm.Tick(await self._queue_news()), None
                if self.setup is not None and self.setup.done():
                    await self._settle_setup()  # its failures before anything later
                await self._apply(inp)
                if done is not None and not done.done():
                    done.set_result((before, self.call))
            await self._settle_setup()
            if self.emitting is not None:  # the last item still reaches the sink
                await self.emitting
        except Exception:
            log.exception("call %s worker failed", self.call.id)
        finally:
            self._release()

    def _release(self) -> None:
        if self.setup is not None:  # the worker was cancelled during it
            self.setup.cancel()
        self.host.forget(self)
        if self.offer is not None and not self.offer.done():
            self.offer.set_exception(CallGone(f"call {self.call.id} ended"))
        while not self.inbox.empty():
            _inp, done = self.inbox.get_nowait()
            if done is not None and not done.done():
                done.set_result((self.call.state, self.call))

    async def _check_recordings(self, ended_at: float) -> bool:
        """No recording event for a while after the end: ask ARI how each pending recording
        ended (its event can be lost: see :mod:`channels.voice.recordings`). False once the
        call has waited ``recording_wait_s`` for a recording that is still live."""
        for name in self.call.pending_recordings:
            settled = await recordings.settle(self.host.ari, name)
            if settled is not None:
                log.info("call %s: recording %s ended without its event (%s)", self.call.id,
                         name, "stored" if settled.stored else "no file")  # fmt: skip
                await self._apply(settled)
        if self.call.finished:
            return True
        return self.host.now() - ended_at < self.host.settings.recording_wait_s

    async def _queue_news(self) -> sm.QueueStatus | None:
        """Ask the hub where a queued call stands, only when an announcement is due."""
        call, provider = self.call, self.host.queue_status
        if (provider is None or call.state is not sm.CallState.QUEUED or call.deadline is None
                or self.host.now() < call.deadline):
            return None
        try:
            async with asyncio.timeout(2.0):
                return await provider(call.id)
        except Exception:
            log.exception("call %s: queue status unavailable", call.id)
            return None

    async def _apply(self, inp: sm.Input) -> None:
        call, outs = sm.step(self.call, inp, self.host.now())
        if call.state is not self.call.state:
            log.info("call %s: %s -> %s", call.id, self.call.state, call.state)
        self.call = call
        await self._perform(outs)

    async def _perform(self, outs: list[sm.Output]) -> None:
        failed: list[sm.ActionFailed] = []
        # A new call straight to the queue (no IVR menu): its item goes to the sink before the
        # Answer, so ingest and routing run while Asterisk answers and starts MOH (ring time);
        # answer and MOH run beside the worker (see _act), so an offer that arrives meanwhile
        # rings the agent at once.
        first = next((o for o in outs if isinstance(o, sm.Notice)), None)
        early = first if isinstance(first, sm.Queued) and isinstance(outs[0], sm.Answer) else None
        if early is not None:
            self._hand_over(self._queued_item())
            rest = [o for o in outs if o is not early]
            if self.setup is None and not any(isinstance(o, sm.Notice) for o in rest):
                # answer + MOH as their own task: the agent's originate need not wait for them
                self.setup = asyncio.create_task(self._run_setup(rest),
                                                 name=f"voice-setup-{self.call.id}")  # fmt: skip
                return
        for out in outs:
            if out is early:
                continue
            if isinstance(out, sm.Notice):
                await self._notice(out)
            else:
                await self._act(out, failed)
        for f in failed:
            await self._apply(f)

    async def _run_setup(self, actions: list[sm.Output]) -> list[sm.ActionFailed]:
        failed: list[sm.ActionFailed] = []
        for out in actions:
            await self._do_act(cast(sm.Action, out), failed)
        return failed

    async def _settle_setup(self) -> None:
        """Wait for the new call's answer and MOH, then feed their failures to the machine."""
        setup, self.setup = self.setup, None
        if setup is None:
            return
        for f in await setup:
            await self._apply(f)

    async def _act(self, out: sm.Action, failed: list[sm.ActionFailed]) -> None:
        """Perform one ARI action; a failure is collected for the state machine.

        A new call's answer and MOH run as a task of their own (:meth:`_perform`), so the
        hub's offer can ring the agent while they are in flight: ``OriginateAgent`` creates a
        new channel and needs nothing from the caller's. Every other action concerns the
        caller's channel or a bridge with it, so it waits for them first (and for their
        failures to reach the state machine), keeping the call's actions in order.
        """
        if self.setup is not None and not isinstance(out, sm.OriginateAgent):
            await self._settle_setup()
        await self._do_act(out, failed)

    async def _do_act(self, out: sm.Action, failed: list[sm.ActionFailed]) -> None:
        if isinstance(out, sm.CreateAgentLeg | sm.OriginateAgent):
            self.host.own(out.channel, self.call.id)
        elif isinstance(out, sm.Bridge):
            self.host.own(out.bridge_id, self.call.id)
        try:
            await execute(self.host.ari, self.host.settings.app, out)
        except ChannelError as exc:
            log.warning("call %s: %s failed: %s", self.call.id, type(out).__name__, exc)
            failed.append(sm.ActionFailed(out, exc.code))

    def _queued_item(self) -> Inbound:
        return call_inbound(self.call, self.caller, self.sender,
                            channel_id=self.host.settings.channel_id,
                            received_at=self.received_at)  # fmt: skip

    async def _notice(self, notice: sm.Notice) -> None:
        s = self.host.settings
        now = datetime.now(UTC)
        if isinstance(notice, sm.Queued):
            self._hand_over(self._queued_item())  # not awaited: see the module docstring
        elif isinstance(notice, sm.AgentAnswered):
            if self.offer is not None and not self.offer.done():
                self.offer.set_result(notice.agent_channel)
        elif isinstance(notice, sm.AgentFailed):
            if self.offer is not None and not self.offer.done():
                self.offer.set_exception(AgentUnavailable(notice.reason))
        elif isinstance(notice, sm.Ended):
            log.info("call %s ended (%s, abandoned=%s)", self.call.id, notice.reason,
                     notice.abandoned)  # fmt: skip
            await self._hand_over(end_inbound(self.call, self.sender, channel_id=s.channel_id,
                                              received_at=now, abandoned=notice.abandoned,
                                              wait_s=notice.wait_s))  # fmt: skip
        elif isinstance(notice, sm.RecordingReady | sm.VoicemailReady):
            try:
                wav = await self.host.ari.fetch_recording_file(notice.name)
            except ChannelError as exc:
                log.error("call %s: recording %s not fetched: %s", self.call.id, notice.name, exc)
                return
            make = (voicemail_inbound if isinstance(notice, sm.VoicemailReady)
                    else leg_recording_inbound)  # fmt: skip
            await self._hand_over(make(self.call, self.sender, notice.name, wav,
                                       channel_id=s.channel_id, received_at=now))  # fmt: skip
            if s.delete_recordings:
                with contextlib.suppress(ChannelError):
                    await self.host.ari.delete_stored_recording(notice.name)

    def _hand_over(self, inbound: Inbound) -> asyncio.Task[None]:
        """Queue ``inbound`` for the sink behind the call's earlier items (returns its task)."""
        previous = self.emitting

        async def emit() -> None:
            if previous is not None:
                await asyncio.wait([previous])  # its outcome is its own (_emit never raises)
            await self._emit(inbound)

        self.emitting = asyncio.create_task(emit(), name=f"voice-item-{inbound.external_id}")
        return self.emitting

    async def _emit(self, inbound: Inbound) -> None:
        """Hand an item to the sink, retrying transient failures; never raise into the call."""
        sink = self.host.sink()
        if sink is None:
            return
        for attempt in range(4):
            try:
                await sink(inbound)
                return
            except TransientChannelError as exc:
                log.warning("sink busy for %s (%s), retry %d", inbound.external_id, exc, attempt)
                await asyncio.sleep(0.2 * 2**attempt)
            except Exception:
                log.exception("sink rejected %s", inbound.external_id)
                return
        log.error("sink never took %s", inbound.external_id)
