"""The value the per-call state machine works on: a call's state and everything known about it.

Kept apart from the transitions (:mod:`channels.voice.call` and the queue / transfer modules
beside it) so each of those stays small; all of them are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from channels.voice import events as ev
from channels.voice.commands import Input, Output
from channels.voice.ivr import IvrConfig, Menu


class CallState(StrEnum):
    IVR = "ivr"
    QUEUED = "queued"
    OFFERING = "offering"
    CONNECTED = "connected"
    HELD = "held"
    CONSULTING = "consulting"  # caller on hold, the consult leg rings
    CONSULTED = "consulted"  # caller on hold, agent talks to the transfer target
    CALLBACK_OFFER = "callback_offer"  # left the queue: "press 1 to be called back"
    VOICEMAIL = "voicemail"  # left the queue: greeting, beep, recording the caller
    FAREWELL = "farewell"  # a last prompt, then the hub hangs up
    ENDED = "ended"


WAITING = (CallState.IVR, CallState.QUEUED, CallState.OFFERING)
FAILED_DIAL = {"NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL", "CANCEL"}
# Q.850 hang-up causes of an agent leg that never answered -> why the offer failed
HANGUP_CAUSES = {17: "busy", 18: "noanswer", 19: "noanswer", 21: "rejected", 1: "chanunavail",
                 3: "chanunavail", 20: "chanunavail", 27: "chanunavail", 34: "congestion",
                 38: "congestion", 41: "congestion", 42: "congestion", 44: "congestion"}


def hangup_reason(inp: Input) -> str:
    """Why an unanswered agent leg went away, from the cause Asterisk reports (if any)."""
    cause = inp.cause if isinstance(inp, ev.ChannelHangupRequest | ev.ChannelDestroyed) else None
    return HANGUP_CAUSES.get(cause or 0, "hangup")


@dataclass(frozen=True, slots=True)
class Call:
    """Everything known about one inbound call; ``id`` is the caller channel's unique id."""

    id: str
    state: CallState
    arrived_at: float
    config: IvrConfig
    menu: Menu | None = None
    tries: int = 0
    prompt_seq: int = 0
    playback_id: str | None = None
    deadline: float | None = None  # when to feed a Tick (IVR digit timeout, ring timeout, ...)
    ivr_path: tuple[str, ...] = ()
    digits: str = ""
    queue: str | None = None
    agent_channel: str | None = None
    agent_endpoint: str | None = None
    ring_timeout: int = 15
    whisper_id: str | None = None  # playback id of the whisper the agent is hearing
    answered_at: float | None = None
    bridge_id: str | None = None
    recording: str | None = None
    recording_done: bool = False
    end_reason: str | None = None
    failed_agents: tuple[str, ...] = field(default=())
    # queue experience: the hub's latest news and the announcement playing (its playback id)
    position: int | None = None
    ewt_s: float | None = None
    announce_id: str | None = None
    announcements: int = 0
    leave_reason: str | None = None  # why the caller is leaving (callback, voicemail)
    voicemail: str | None = None  # name of the voicemail recording once it started
    voicemail_done: bool = False
    # transfers: the consult leg, bridges/recordings of earlier agents still to be reported
    consult_channel: str | None = None
    legs: int = 0  # agent connections so far: names the bridge/recording of each
    old_recordings: tuple[str, ...] = ()

    @property
    def pending_recordings(self) -> tuple[str, ...]:
        """Recordings started for this call whose end has not been seen yet."""
        live = () if self.recording is None or self.recording_done else (self.recording,)
        mail = () if self.voicemail is None or self.voicemail_done else (self.voicemail,)
        return (*live, *self.old_recordings, *mail)

    @property
    def finished(self) -> bool:
        """Nothing more will happen: ended and every recording has been reported."""
        recorded = self.recording is None or self.recording_done
        voicemail = self.voicemail is None or self.voicemail_done
        return (self.state is CallState.ENDED and recorded and voicemail
                and not self.old_recordings)


Step = tuple[Call, list[Output]]


def safe_name(call_id: str) -> str:
    """A recording / bridge name derived from a channel id (ARI ids contain dots)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in call_id)
