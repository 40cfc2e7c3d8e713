"""The per-call state machine: pure, so every path of a call can be tested without Asterisk.

``step(call, input, now) -> (call', outputs)``. Inputs are parsed ARI events plus the hub's
decisions (offer an agent, hold, hang up) and clock ticks; outputs are ARI actions as data (the
channel executes them in order) and notices for the hub (queued, agent answered or failed, ended,
recording ready). Time is an input, never read here.

States::

    IVR ──digit/timeout──► QUEUED ──Offer──► OFFERING ──agent answers──► CONNECTED ⇄ HELD
      │                    ▲ │ ▲                │     (then whisper)      ▲ │       │
      │                    │ │ └ no answer/busy ┘                         │ ▼       │
      │                    │ │ └──────────── blind transfer ────── CONSULTING ⇄ CONSULTED
      │                    │ └► CALLBACK_OFFER / VOICEMAIL ─► FAREWELL ─┐ (attended transfer)
      └──────────── caller hangs up (abandoned) ───────► ENDED ◄── hang-up ──┘

The queue experience (announcements, callback, voicemail) is in :mod:`channels.voice.call_queue`,
transfers in :mod:`channels.voice.call_transfer`; the value itself in
:mod:`channels.voice.callstate`.

The caller hears music on hold from QUEUED until the agent answered (and heard the optional
whisper naming the queue), including while agents are offered and fail: MOH is only stopped once
the bridge is about to be built, so the caller never hears a gap between agents. The ring timeout
is our own timer (a ``Tick`` after ``ring_timeout``), not Asterisk's, because a timed-out dial
reaches ARI only as an anonymous hang-up.
"""

from __future__ import annotations

from dataclasses import replace

from channels.voice import events as ev
from channels.voice.call_queue import (
    announce_media,
    leaving_step,
    next_announcement,
    resync_leaving,
    voicemail_finished,
    waiting_step,
)
from channels.voice.call_transfer import transfer_step
from channels.voice.callstate import (
    FAILED_DIAL,
    HANGUP_CAUSES,
    WAITING,
    Call,
    CallState,
    Step,
    hangup_reason,
    safe_name,
)
from channels.voice.commands import (
    Action,
    ActionFailed,
    AddToBridge,
    AgentAnswered,
    AgentFailed,
    Answer,
    Bridge,
    CallbackOfferRequest,
    CancelOffer,
    CancelTransfer,
    CompleteTransfer,
    ConsultRequest,
    CreateAgentLeg,
    DestroyBridge,
    DialAgent,
    Ended,
    Hangup,
    HangupRequest,
    HoldRequest,
    Input,
    Notice,
    Offer,
    OriginateAgent,
    Output,
    Play,
    Queued,
    QueueStatus,
    RecordBridge,
    RecordCaller,
    RecordingReady,
    RecordingSettled,
    RemoveFromBridge,
    RequeueRequest,
    Resync,
    StartMoh,
    StopMoh,
    StopPlayback,
    Tick,
    Transferred,
    UnholdRequest,
    VoicemailReady,
    VoicemailRequest,
)
from channels.voice.ivr import IvrConfig

__all__ = [
    "FAILED_DIAL",
    "HANGUP_CAUSES",
    "WAITING",
    "Action",
    "ActionFailed",
    "AddToBridge",
    "AgentAnswered",
    "AgentFailed",
    "Answer",
    "Bridge",
    "Call",
    "CallState",
    "CallbackOfferRequest",
    "CancelOffer",
    "CancelTransfer",
    "CompleteTransfer",
    "ConsultRequest",
    "CreateAgentLeg",
    "DestroyBridge",
    "DialAgent",
    "Ended",
    "Hangup",
    "HangupRequest",
    "HoldRequest",
    "Input",
    "Notice",
    "Offer",
    "OriginateAgent",
    "Output",
    "Play",
    "QueueStatus",
    "Queued",
    "RecordBridge",
    "RecordCaller",
    "RecordingReady",
    "RecordingSettled",
    "RemoveFromBridge",
    "RequeueRequest",
    "Resync",
    "StartMoh",
    "Step",
    "StopMoh",
    "StopPlayback",
    "Tick",
    "Transferred",
    "UnholdRequest",
    "VoicemailReady",
    "VoicemailRequest",
    "adopt_call",
    "announce_media",
    "hangup_reason",
    "new_call",
    "safe_name",
    "step",
]


def new_call(call_id: str, config: IvrConfig, now: float) -> Step:
    """A caller entered the app: answer, then the IVR (or straight to the queue)."""
    call = Call(id=call_id, state=CallState.IVR, arrived_at=now, config=config, menu=config.menu)
    out: list[Output] = [Answer(call_id)]
    if config.menu is None:
        call, more = _enqueue(call, config.default_queue, now)
    else:
        call, more = _prompt(call, config.menu.prompts)
    return call, out + more


def adopt_call(call_id: str, config: IvrConfig, now: float, *, bridge_id: str | None = None,
               agent_channel: str | None = None, queue: str | None = None) -> Step:
    """A caller found in the app after a restart: keep its bridge, or put it back in the queue."""
    call = Call(id=call_id, state=CallState.QUEUED, arrived_at=now, config=config,
                queue=queue or config.default_queue)
    if bridge_id is not None and agent_channel is not None:
        # the bridge and its recording are named alike per agent leg (bridge-<id>[-n],
        # call-<id>[-n], see _agent_answered), so the bridge's name gives the live recording's
        # and how many legs came before (a transfer after the restart must not reuse a name)
        legs = _leg_of(bridge_id, call_id)
        return replace(call, state=CallState.CONNECTED, bridge_id=bridge_id,
                       agent_channel=agent_channel, answered_at=now, legs=legs,
                       recording=f"call-{safe_name(call_id)}{_leg_suffix(legs)}"), []
    return call, [StartMoh(call_id, config.moh_class), Queued(call.queue or "")]


def _leg_suffix(leg: int) -> str:
    """What names agent leg ``leg``'s bridge and recording apart from the first leg's."""
    return f"-{leg}" if leg > 1 else ""


def _leg_of(bridge_id: str, call_id: str) -> int:
    """Which agent leg made ``bridge_id`` (1 for ``bridge-<id>``, n for ``bridge-<id>-n``); 1
    for a name this module did not make."""
    base = f"bridge-{safe_name(call_id)}"
    tail = bridge_id.removeprefix(base)
    if tail != bridge_id and tail.startswith("-") and tail[1:].isdigit() and int(tail[1:]) > 1:
        return int(tail[1:])
    return 1


def _prompt(call: Call, media: tuple[str, ...]) -> Step:
    seq = call.prompt_seq + 1
    pid = f"{safe_name(call.id)}-p{seq}"
    return replace(call, prompt_seq=seq, playback_id=pid, deadline=None), [
        Play(call.id, media, pid)
    ]


def _enqueue(call: Call, queue: str, now: float) -> Step:
    out: list[Output] = []
    if call.playback_id is not None:
        out.append(StopPlayback(call.playback_id))
    call = replace(call, state=CallState.QUEUED, queue=queue, playback_id=None, menu=None)
    call = replace(call, deadline=next_announcement(call, now))
    return call, [*out, StartMoh(call.id, call.config.moh_class), Queued(queue)]


def _end(call: Call, reason: str, now: float, *, hangup_caller: bool) -> Step:
    out: list[Output] = []
    if hangup_caller:
        out.append(Hangup(call.id))
    if call.agent_channel is not None:
        out.append(Hangup(call.agent_channel))
    if call.consult_channel is not None:
        out.append(Hangup(call.consult_channel))
    if call.bridge_id is not None:
        out.append(DestroyBridge(call.bridge_id))
    if call.announce_id is not None:
        out.append(StopPlayback(call.announce_id))
    reason = call.leave_reason or reason
    abandoned = call.state in WAITING
    if call.state is CallState.OFFERING and call.agent_channel is not None:
        out.append(AgentFailed(call.agent_channel, "caller_gone"))
    waited_until = call.answered_at if call.answered_at is not None else now
    call = replace(call, state=CallState.ENDED, end_reason=reason, deadline=None,
                   playback_id=None, announce_id=None, consult_channel=None)
    return call, [*out, Ended(reason, abandoned, max(0.0, waited_until - call.arrived_at))]


def _agent_failed(call: Call, reason: str, now: float) -> Step:
    agent = call.agent_channel or ""
    call = replace(call, state=CallState.QUEUED, agent_channel=None, agent_endpoint=None,
                   failed_agents=(*call.failed_agents, agent))
    call = replace(call, deadline=next_announcement(call, now))
    return call, [Hangup(agent, "normal"), AgentFailed(agent, reason)]


def _agent_answered(call: Call, now: float) -> Step:
    agent = call.agent_channel
    assert agent is not None
    suffix = _leg_suffix(call.legs + 1)
    bridge_id = f"bridge-{safe_name(call.id)}{suffix}"
    rec = f"call-{safe_name(call.id)}{suffix}"
    out: list[Output] = [StopPlayback(call.announce_id)] if call.announce_id else []
    call = replace(call, state=CallState.CONNECTED, bridge_id=bridge_id, recording=rec,
                   recording_done=False, deadline=None, legs=call.legs + 1, announce_id=None,
                   answered_at=now if call.answered_at is None else call.answered_at)
    return call, [
        *out,
        StopMoh(call.id),
        Bridge(bridge_id, (call.id, agent)),
        RecordBridge(bridge_id, rec),
        AgentAnswered(agent),
    ]


def _whisper_or_bridge(call: Call, now: float) -> Step:
    """The agent answered: whisper the queue to them first if configured (caller keeps MOH)."""
    media = call.config.whisper.get(call.queue or "")
    agent = call.agent_channel
    if not media or agent is None:
        return _agent_answered(call, now)
    seq = call.prompt_seq + 1
    pid = f"{safe_name(call.id)}-w{seq}"
    call = replace(call, prompt_seq=seq, whisper_id=pid, deadline=None)
    return call, [Play(agent, media, pid)]


def _on_digit(call: Call, digit: str, now: float) -> Step:
    menu = call.menu
    assert menu is not None
    option = menu.options.get(digit)
    out: list[Output] = [StopPlayback(call.playback_id)] if call.playback_id else []
    call = replace(call, playback_id=None)
    if option is None:
        return _retry(call, out, now)
    call = replace(call, digits=call.digits + digit, ivr_path=(*call.ivr_path, option.label))
    if option.queue is not None:
        call, more = _enqueue(call, option.queue, now)
        return call, out + more
    assert option.submenu is not None
    call = replace(call, menu=option.submenu, tries=0)
    call, more = _prompt(call, option.submenu.prompts)
    return call, out + more


def _retry(call: Call, out: list[Output], now: float) -> Step:
    menu = call.menu
    assert menu is not None
    tries = call.tries + 1
    if tries >= menu.max_tries:
        call, more = _enqueue(replace(call, tries=tries), menu.fallback_queue, now)
        return call, out + more
    call, more = _prompt(replace(call, tries=tries), (*menu.invalid_prompts, *menu.prompts))
    return call, out + more


def _caller_gone(inp: Input, call: Call) -> bool:
    return (isinstance(inp, ev.StasisEnd | ev.ChannelDestroyed | ev.ChannelHangupRequest)
            and inp.channel.id == call.id)


def _agent_gone(inp: Input, call: Call) -> bool:
    return (call.agent_channel is not None
            and isinstance(inp, ev.StasisEnd | ev.ChannelDestroyed | ev.ChannelHangupRequest)
            and inp.channel.id == call.agent_channel)


TALKING = (CallState.CONNECTED, CallState.HELD, CallState.CONSULTING, CallState.CONSULTED)


def _recording_ended(call: Call, name: str, ok: bool) -> Step:
    """A recording ended: the live one, one of an earlier agent (transfer), or the voicemail.

    ``ok``: it finished and its file is stored (an event, or ARI asked when the event never
    came: :class:`RecordingSettled`); whichever comes second is a no-op.
    """
    if name == call.recording and not call.recording_done:
        return replace(call, recording_done=True), [RecordingReady(name)] if ok else []
    if name in call.old_recordings:
        old = tuple(r for r in call.old_recordings if r != name)
        return replace(call, old_recordings=old), [RecordingReady(name)] if ok else []
    return voicemail_finished(call, name, ok) or (call, [])


def step(call: Call, inp: Input, now: float) -> Step:
    """Apply one input; unknown or late inputs leave the call unchanged."""
    if isinstance(inp, ev.RecordingFinished | ev.RecordingFailed):
        return _recording_ended(call, inp.recording.name, isinstance(inp, ev.RecordingFinished))
    if isinstance(inp, RecordingSettled):
        return _recording_ended(call, inp.name, inp.stored)
    if isinstance(inp, Offer) and call.state is not CallState.QUEUED:
        return call, [AgentFailed(inp.agent_channel, f"call_{call.state}")]
    if call.state is CallState.ENDED:
        return call, []
    if _caller_gone(inp, call):
        return _end(call, "caller_hangup", now, hangup_caller=False)
    if isinstance(inp, HangupRequest):
        return _end(call, inp.reason, now, hangup_caller=True)
    if isinstance(inp, Resync):
        return _resync(call, inp, now)
    state = call.state

    if state is CallState.IVR:
        if isinstance(inp, ev.ChannelDtmfReceived) and inp.channel.id == call.id:
            return _on_digit(call, inp.digit, now)
        if (isinstance(inp, ev.PlaybackFinished) and inp.playback.id == call.playback_id
                and call.menu is not None):
            return replace(call, playback_id=None, deadline=now + call.menu.timeout_s), []
        if isinstance(inp, Tick) and call.deadline is not None and now >= call.deadline:
            return _retry(replace(call, deadline=None), [], now)
        return call, []

    if state in (CallState.QUEUED, CallState.OFFERING):
        waited = waiting_step(call, inp, now)
        if waited is not None:
            return waited
    if state in (CallState.CALLBACK_OFFER, CallState.VOICEMAIL, CallState.FAREWELL):
        return leaving_step(call, inp, now)

    if state is CallState.QUEUED:
        if isinstance(inp, Offer):
            call = replace(call, state=CallState.OFFERING, agent_channel=inp.agent_channel,
                           agent_endpoint=inp.agent_endpoint, ring_timeout=inp.ring_timeout,
                           deadline=now + inp.ring_timeout)
            # Asterisk's own dial timeout only as a safety net: the ring timer is ours (Tick)
            return call, [OriginateAgent(inp.agent_endpoint, inp.agent_channel, call.id,
                                         inp.ring_timeout + 5, inp.caller_id)]
        return call, []

    if state is CallState.OFFERING:
        if isinstance(inp, ev.StasisStart) and inp.channel.id == call.agent_channel:
            # an originated leg enters the app once it answered (a Dial ANSWER comes first,
            # but the leg can only be bridged from here on)
            return _whisper_or_bridge(call, now)
        if isinstance(inp, Tick) and call.deadline is not None and now >= call.deadline:
            return _agent_failed(call, "noanswer", now)
        if isinstance(inp, CancelOffer) and inp.agent_channel == call.agent_channel:
            return _agent_failed(call, "revoked", now)
        if isinstance(inp, ev.Dial) and inp.peer.id == call.agent_channel:
            if inp.dialstatus in FAILED_DIAL:
                return _agent_failed(call, inp.dialstatus.lower(), now)
            return call, []
        if _agent_gone(inp, call):
            return _agent_failed(call, hangup_reason(inp), now)
        wid = call.whisper_id
        whisper_done = ((isinstance(inp, ev.PlaybackFinished) and inp.playback.id == wid)
                        or (isinstance(inp, ActionFailed) and isinstance(inp.action, Play)
                            and inp.action.playback_id == wid))
        if call.whisper_id is not None and whisper_done:
            return _agent_answered(replace(call, whisper_id=None), now)
        if isinstance(inp, ActionFailed) and isinstance(inp.action, OriginateAgent):
            return _agent_failed(call, "originate_failed", now)
        return call, []

    if state in TALKING:
        transferred = transfer_step(call, inp, now)
        if transferred is not None:
            return transferred
        if _agent_gone(inp, call):
            return _end(replace(call, agent_channel=None), "agent_hangup", now,
                        hangup_caller=True)
        assert call.bridge_id is not None
        if isinstance(inp, ActionFailed) and isinstance(inp.action, RecordBridge):
            return replace(call, recording=None), []  # nothing will finish; do not wait for it
        if isinstance(inp, HoldRequest) and state is CallState.CONNECTED:
            return replace(call, state=CallState.HELD), [
                RemoveFromBridge(call.bridge_id, call.id),
                StartMoh(call.id, call.config.moh_class),
            ]
        if isinstance(inp, UnholdRequest) and state is CallState.HELD:
            return replace(call, state=CallState.CONNECTED), [
                StopMoh(call.id),
                AddToBridge(call.bridge_id, call.id),
            ]
    return call, []


def _resync(call: Call, inp: Resync, now: float) -> Step:
    """Put the call back where it belongs after events were missed; never leave silence."""
    live = inp.channels
    if call.id not in live:
        return _end(call, "lost", now, hangup_caller=False)
    state = call.state
    if state is CallState.IVR and call.menu is not None:
        out: list[Output] = [StopPlayback(call.playback_id)] if call.playback_id else []
        call, more = _prompt(call, call.menu.prompts)
        return call, out + more
    if state is CallState.QUEUED or state is CallState.HELD:
        return call, [StartMoh(call.id, call.config.moh_class)]
    if state is CallState.OFFERING:
        agent = call.agent_channel or ""
        if agent not in live:
            call, out = _agent_failed(call, "lost", now)
            return call, [StartMoh(call.id, call.config.moh_class), *out]
        if live[agent] == "Up":
            return _agent_answered(call, now)
        return call, []
    if state is CallState.CONNECTED and (call.agent_channel or "") not in live:
        return _end(replace(call, agent_channel=None), "agent_lost", now, hangup_caller=True)
    if state in (CallState.CONSULTING, CallState.CONSULTED):
        if (call.agent_channel or "") not in live:
            return _end(replace(call, agent_channel=None), "agent_lost", now, hangup_caller=True)
        if (call.consult_channel or "") not in live:
            return step(call, CancelTransfer(), now)
        return call, [StartMoh(call.id, call.config.moh_class)]
    if state in (CallState.FAREWELL, CallState.CALLBACK_OFFER, CallState.VOICEMAIL):
        return resync_leaving(call)
    return call, []
