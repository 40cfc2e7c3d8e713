"""What goes in and out of the per-call state machine: all plain frozen data.

Actions are ARI calls to make (executed in order by :mod:`channels.voice.actions`), notices are
facts for the hub, inputs are what the hub and the clock feed in besides ARI events.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.voice import events as ev

# --- actions (ARI calls to make) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    channel: str


@dataclass(frozen=True, slots=True)
class Play:
    channel: str
    media: tuple[str, ...]
    playback_id: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartMoh:
    channel: str
    moh_class: str


@dataclass(frozen=True, slots=True)
class StopMoh:
    channel: str


@dataclass(frozen=True, slots=True)
class CreateAgentLeg:
    """Create a leg in our app without dialing it (args ``agent,<call id>``); dialed on
    StasisStart. Attended transfers ring their consult leg this way."""

    endpoint: str
    channel: str
    call_id: str


@dataclass(frozen=True, slots=True)
class OriginateAgent:
    """Ring the agent in one request (``POST /channels``, args ``agent,<call id>``): Asterisk
    dials at once and reports progress as ``Dial`` events; the leg enters the app only once it
    answered. One REST round trip instead of create, wait for StasisStart, dial (ring time)."""

    endpoint: str
    channel: str
    call_id: str
    ring_timeout: int  # Asterisk's own limit, a safety net: the ring timer is ours (Tick)
    caller_id: str = ""  # shown on the agent's phone


@dataclass(frozen=True, slots=True)
class DialAgent:
    """Ring the created agent channel; only valid once it is in the app (StasisStart seen)."""

    channel: str
    caller: str
    ring_timeout: int


@dataclass(frozen=True, slots=True)
class Bridge:
    bridge_id: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordBridge:
    bridge_id: str
    name: str


@dataclass(frozen=True, slots=True)
class AddToBridge:
    bridge_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class RemoveFromBridge:
    bridge_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class Hangup:
    channel: str
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class RecordCaller:
    """Record what the caller says (voicemail): a beep first, ``#`` or ``max_s`` ends it."""

    channel: str
    name: str
    max_s: int


Action = (Answer | Play | StopPlayback | StartMoh | StopMoh | CreateAgentLeg | OriginateAgent
          | DialAgent | Bridge | RecordBridge | AddToBridge | RemoveFromBridge | Hangup
          | DestroyBridge | RecordCaller)

# --- notices (for the hub) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    queue: str


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    agent_channel: str


@dataclass(frozen=True, slots=True)
class AgentFailed:
    agent_channel: str
    reason: str  # noanswer, busy, congestion, chanunavail, hangup, originate_failed, lost


@dataclass(frozen=True, slots=True)
class Ended:
    reason: str
    abandoned: bool  # the caller left before reaching an agent
    wait_s: float  # time from arrival to answer by an agent (or to the end, if abandoned)


@dataclass(frozen=True, slots=True)
class RecordingReady:
    name: str


@dataclass(frozen=True, slots=True)
class VoicemailReady:
    """The caller's voicemail is recorded (stored recording ``name``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Transferred:
    """An attended transfer completed: ``agent_channel`` left, ``target_channel`` has the call."""

    agent_channel: str
    target_channel: str


Notice = (Queued | AgentAnswered | AgentFailed | Ended | RecordingReady | VoicemailReady
          | Transferred)
Output = Action | Notice

# --- inputs from the hub and the clock ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    agent_endpoint: str
    agent_channel: str
    ring_timeout: int = 15
    caller_id: str = ""  # what the agent's phone shows (the caller's number)


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """The hub withdrew the offer ringing ``agent_channel`` (revoked, or its write failed)."""

    agent_channel: str


@dataclass(frozen=True, slots=True)
class HoldRequest:
    pass


@dataclass(frozen=True, slots=True)
class UnholdRequest:
    pass


@dataclass(frozen=True, slots=True)
class HangupRequest:
    reason: str = "hub"


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Where a queued caller stands, from the hub's router: 1 = next; ``ewt_s`` None = unknown."""

    position: int
    ewt_s: float | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock reached the call's deadline; ``status`` is fresh queue news for announcements."""

    status: QueueStatus | None = None


@dataclass(frozen=True, slots=True)
class VoicemailRequest:
    """The router's overflow: the caller leaves the queue and records a message."""


@dataclass(frozen=True, slots=True)
class CallbackOfferRequest:
    """The router's overflow: offer the caller a callback (press the callback digit)."""


@dataclass(frozen=True, slots=True)
class RequeueRequest:
    """Blind transfer: the agent leaves, the caller goes back to music on hold to be offered to
    whoever the hub picks next (another agent, a queue, or an external number)."""


@dataclass(frozen=True, slots=True)
class ConsultRequest:
    """Attended transfer, step 1: caller on hold, ring ``endpoint`` on a new leg ``channel``."""

    endpoint: str
    channel: str
    ring_timeout: int = 15


@dataclass(frozen=True, slots=True)
class CompleteTransfer:
    """Attended transfer done: the caller joins the consulted party, the agent leaves."""


@dataclass(frozen=True, slots=True)
class CancelTransfer:
    """Attended transfer abandoned: the consult leg hangs up, the caller is back with the agent."""


@dataclass(frozen=True, slots=True)
class ActionFailed:
    action: Action
    code: str


@dataclass(frozen=True, slots=True)
class Resync:
    """After an events reconnect: the channels ARI still has, by id, with their state."""

    channels: dict[str, str]


@dataclass(frozen=True, slots=True)
class RecordingSettled:
    """ARI no longer has recording ``name`` live, yet its finished (or failed) event never came:
    ``stored`` says whether the file is there (see :mod:`channels.voice.recordings`)."""

    name: str
    stored: bool


Input = (ev.Event | Offer | CancelOffer | HoldRequest | UnholdRequest | HangupRequest | Tick
         | ActionFailed | Resync | QueueStatus | VoicemailRequest | CallbackOfferRequest
         | RequeueRequest | ConsultRequest | CompleteTransfer | CancelTransfer | RecordingSettled)
