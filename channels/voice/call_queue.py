"""The caller's wait in the queue, as pure transitions of the per-call state machine.

- Announcements: every ``announce_interval`` seconds a queued caller's music on hold pauses for
  "you are next" / "there are N calls waiting" and "the estimated hold time is M minutes"
  (Asterisk's own ``queue-*`` sound files, numbers as ``number:N``), then MOH resumes.
  Position and estimated wait come from the hub's router with the ``Tick`` that makes the
  announcement due (channels never import the hub), so they are fresh; no news, nothing said.
- Callback: the caller presses ``callback_digit`` while waiting (if configured), or the router's
  overflow offers it ("to call this number back, press 1"); a goodbye is played and we hang up,
  leaving with reason ``callback`` so the hub turns the conversation into callback work.
- Voicemail: the router's overflow sends the caller to a greeting, a beep and a recording (``#``,
  hang-up or ``voicemail_max_s`` ends it); the WAV is reported with :class:`VoicemailReady`.
An agent leg ringing when the caller leaves the queue is hung up (reason ``caller_gone``).
"""

from __future__ import annotations

import math
from dataclasses import replace

from channels.voice import events as ev
from channels.voice.callstate import Call, CallState, Step, safe_name
from channels.voice.commands import (
    ActionFailed,
    AgentFailed,
    CallbackOfferRequest,
    Hangup,
    Input,
    Output,
    Play,
    QueueStatus,
    RecordCaller,
    StartMoh,
    StopMoh,
    StopPlayback,
    Tick,
    VoicemailReady,
    VoicemailRequest,
)

CALLBACK_TRIES = 2  # how often the callback offer is played before voicemail takes over


def announce_media(position: int, ewt_s: float | None, *, holdtime: bool) -> tuple[str, ...]:
    """What app_queue would say: position, then the estimated hold time in whole minutes."""
    media: list[str] = []
    if position <= 1:
        media.append("sound:queue-youarenext")
    else:
        media += ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    if holdtime and ewt_s is not None and ewt_s >= 0:
        minutes = math.ceil(ewt_s / 60.0)
        if minutes <= 1:
            media += ["sound:queue-holdtime", "sound:queue-less-than", "number:1",
                      "sound:queue-minute"]
        else:
            media += ["sound:queue-holdtime", f"number:{minutes}", "sound:queue-minutes"]
    media.append("sound:queue-thankyou")
    return tuple(media)


def next_announcement(call: Call, now: float) -> float | None:
    """The deadline of a queued call: its next announcement (None: announcements are off)."""
    interval = call.config.announce_interval(call.queue)
    return now + interval if interval > 0 else None


def _play(call: Call, media: tuple[str, ...], tag: str) -> tuple[Call, Play]:
    seq = call.prompt_seq + 1
    pid = f"{safe_name(call.id)}-{tag}{seq}"
    return replace(call, prompt_seq=seq, playback_id=pid), Play(call.id, media, pid)


def _quiet(call: Call) -> list[Output]:
    """Stop whatever the caller hears in the queue (announcement or MOH) and any ringing agent."""
    out: list[Output] = []
    if call.announce_id is not None:
        out.append(StopPlayback(call.announce_id))
    out.append(StopMoh(call.id))
    if call.state is CallState.OFFERING and call.agent_channel is not None:
        out += [Hangup(call.agent_channel), AgentFailed(call.agent_channel, "caller_gone")]
    return out


def _leave(call: Call, state: CallState, reason: str) -> Call:
    return replace(call, state=state, leave_reason=reason, announce_id=None, deadline=None,
                   agent_channel=None, agent_endpoint=None, whisper_id=None, tries=0)


def farewell(call: Call, reason: str) -> Step:
    """Say goodbye, then hang up; the call ends with ``reason``."""
    out = _quiet(call) if call.state in (CallState.QUEUED, CallState.OFFERING) else []
    call, play = _play(_leave(call, CallState.FAREWELL, reason), call.config.goodbye_prompts, "g")
    return call, [*out, play]


def start_voicemail(call: Call) -> Step:
    out = _quiet(call) if call.state in (CallState.QUEUED, CallState.OFFERING) else []
    if call.state is CallState.CALLBACK_OFFER and call.playback_id is not None:
        out.append(StopPlayback(call.playback_id))
    call = _leave(call, CallState.VOICEMAIL, "voicemail")
    call, play = _play(call, call.config.voicemail_prompts, "v")
    return call, [*out, play]


def _offer_callback(call: Call) -> Step:
    digit = call.config.callback_digit or "1"
    media = ("sound:vm-tocallback", "sound:vm-press", f"sound:digits/{digit}")
    call, play = _play(replace(call, deadline=None), media, "c")
    return call, [play]


def _announce(call: Call, status: QueueStatus | None, now: float) -> Step:
    if status is not None:
        call = replace(call, position=status.position, ewt_s=status.ewt_s)
    call = replace(call, deadline=next_announcement(call, now))
    if status is None or call.announce_id is not None:
        return call, []  # no news from the hub: say nothing rather than something stale
    media = announce_media(status.position, status.ewt_s, holdtime=call.config.announce_holdtime)
    seq = call.prompt_seq + 1
    pid = f"{safe_name(call.id)}-a{seq}"
    call = replace(call, prompt_seq=seq, announce_id=pid, announcements=call.announcements + 1,
                   deadline=None)
    return call, [StopMoh(call.id), Play(call.id, media, pid)]


def _played(inp: Input, playback_id: str | None) -> bool:
    """The playback ended, or could not even start."""
    if playback_id is None:
        return False
    return ((isinstance(inp, ev.PlaybackFinished) and inp.playback.id == playback_id)
            or (isinstance(inp, ActionFailed) and isinstance(inp.action, Play)
                and inp.action.playback_id == playback_id))


def waiting_step(call: Call, inp: Input, now: float) -> Step | None:
    """Queue-experience inputs while QUEUED or OFFERING; None: not one of ours."""
    if isinstance(inp, QueueStatus):
        return replace(call, position=inp.position, ewt_s=inp.ewt_s), []
    if _played(inp, call.announce_id):
        deadline = next_announcement(call, now) if call.state is CallState.QUEUED \
            else call.deadline
        return replace(call, announce_id=None, deadline=deadline), [
            StartMoh(call.id, call.config.moh_class)]
    if isinstance(inp, VoicemailRequest):
        return start_voicemail(call)
    if isinstance(inp, CallbackOfferRequest):
        out = _quiet(call)
        call, more = _offer_callback(_leave(call, CallState.CALLBACK_OFFER, "callback"))
        return call, out + more
    digit = call.config.callback_digit
    if (isinstance(inp, ev.ChannelDtmfReceived) and inp.channel.id == call.id
            and digit is not None and inp.digit == digit):
        return farewell(call, "callback")
    if (call.state is CallState.QUEUED and isinstance(inp, Tick) and call.deadline is not None
            and now >= call.deadline):
        return _announce(call, inp.status, now)
    return None


def leaving_step(call: Call, inp: Input, now: float) -> Step:
    """CALLBACK_OFFER, VOICEMAIL and FAREWELL: the caller is on the way out of the queue."""
    state = call.state
    if state is CallState.FAREWELL:
        if _played(inp, call.playback_id):
            return replace(call, playback_id=None), [Hangup(call.id)]
        return call, []
    if state is CallState.CALLBACK_OFFER:
        digit = call.config.callback_digit or "1"
        if isinstance(inp, ev.ChannelDtmfReceived) and inp.channel.id == call.id:
            if inp.digit != digit:
                return call, []
            out: list[Output] = [StopPlayback(call.playback_id)] if call.playback_id else []
            call, more = farewell(replace(call, playback_id=None), "callback")
            return call, out + more
        if _played(inp, call.playback_id):
            return replace(call, playback_id=None,
                           deadline=now + call.config.callback_timeout_s), []
        if isinstance(inp, Tick) and call.deadline is not None and now >= call.deadline:
            if call.tries + 1 >= CALLBACK_TRIES:
                return start_voicemail(call)
            return _offer_callback(replace(call, tries=call.tries + 1))
        return call, []
    # VOICEMAIL: greeting, then record until '#', hang-up or the time limit
    if call.voicemail is None:
        if _played(inp, call.playback_id):
            name = f"vm-{safe_name(call.id)}"
            return replace(call, playback_id=None, voicemail=name), [
                RecordCaller(call.id, name, call.config.voicemail_max_s)]
        return call, []
    if isinstance(inp, ActionFailed) and isinstance(inp.action, RecordCaller):
        return farewell(replace(call, voicemail=None), "voicemail")
    return call, []


def voicemail_finished(call: Call, name: str, ok: bool) -> Step | None:
    """The voicemail recording ended (in any state, also after the caller hung up); ``ok``:
    it finished and its file is stored."""
    if call.voicemail is None or name != call.voicemail or call.voicemail_done:
        return None
    call = replace(call, voicemail_done=True)
    out: list[Output] = []
    if ok:
        out.append(VoicemailReady(name))
    if call.state is CallState.VOICEMAIL:  # '#' or the time limit: the caller is still here
        call, more = farewell(call, "voicemail")
        out += more
    return call, out


def resync_leaving(call: Call) -> Step:
    """After missed events: replay what a leaving caller may have stopped hearing."""
    if call.state is CallState.FAREWELL:
        return call, [Hangup(call.id)]
    if call.state is CallState.CALLBACK_OFFER:
        return _offer_callback(replace(call, playback_id=None))
    if call.state is CallState.VOICEMAIL and call.voicemail is None:  # still in the greeting
        call, play = _play(replace(call, playback_id=None), call.config.voicemail_prompts, "v")
        return call, [play]
    return call, []
