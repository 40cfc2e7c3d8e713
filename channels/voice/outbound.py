"""Click-to-call: the pure state machine of one outbound call (agent leg first, then customer).

``step(call, input, now) -> (call', outputs)``, like :mod:`channels.voice.call` for inbound calls:
inputs are parsed ARI events, the hub's hang-up request and clock ticks; outputs are ARI actions
as data (executed in order by :mod:`channels.voice.dialer`) and notices for the hub.

States::

    AGENT_RINGING ──agent answers──► CUSTOMER_RINGING ──customer answers──► CONNECTED
         │ no answer / busy               │ busy / no answer / unavailable       │ either side
         ▼                                ▼                                      ▼ hangs up
       ENDED (agent_<why>)             ENDED (customer_<why>)                  ENDED

The agent is rung first so a customer never answers a call nobody is on. While the customer's
phone rings the agent hears a ring tone (:data:`RINGBACK`) from Asterisk. Both ring timeouts are our
own timers (a ``Tick`` after ``ring_timeout``): Asterisk reports no NOANSWER to ARI, a timed-out
dial only shows up as an anonymous hang-up. Legs are created with ``/channels/create`` and dialed
on their ``StasisStart`` (dialing before that is refused with 409). The bridge is recorded from
the moment both are in it; the recording name is derived from the call id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from channels.voice import events as ev
from channels.voice.call import FAILED_DIAL, hangup_reason, safe_name
from channels.voice.commands import (
    ActionFailed,
    Bridge,
    DestroyBridge,
    Hangup,
    HangupRequest,
    Play,
    RecordBridge,
    RecordingReady,
    RecordingSettled,
    StopPlayback,
    Tick,
)

ROLE = "outbound"  # first Stasis argument of every leg this module creates
# What the agent hears while the customer's phone rings: a ring cadence written out as tones, so
# it plays without an indications.conf tone zone (a bare ``tone:ring`` needs one).
RINGBACK = "tone:400+450/400,0/200,400+450/400,0/2000"


class OutState(StrEnum):
    AGENT_RINGING = "agent_ringing"
    CUSTOMER_RINGING = "customer_ringing"
    CONNECTED = "connected"
    ENDED = "ended"


# --- actions and notices particular to outbound calls -----------------------------------------


@dataclass(frozen=True, slots=True)
class CreateLeg:
    """Create a channel in our app with args ``outbound,<call id>,<leg>``; dialed on StasisStart."""

    endpoint: str
    channel: str
    call_id: str
    leg: str  # agent / customer


@dataclass(frozen=True, slots=True)
class DialLeg:
    channel: str
    ring_timeout: int  # Asterisk's own timeout, only a safety net behind our timer


@dataclass(frozen=True, slots=True)
class AgentUp:
    """The agent answered; the customer is being dialed."""

    agent_channel: str


@dataclass(frozen=True, slots=True)
class CustomerUp:
    """The customer answered; both are bridged and recorded."""

    customer_channel: str


@dataclass(frozen=True, slots=True)
class OutboundEnded:
    reason: str  # agent_noanswer, agent_busy, customer_busy, customer_noanswer, agent_hangup, ...
    connected: bool  # the customer answered at some point
    talk_s: float  # seconds from customer answer to the end (0 when never connected)


OutAction = (CreateLeg | DialLeg | Play | StopPlayback | Bridge | RecordBridge | Hangup
             | DestroyBridge)
OutNotice = AgentUp | CustomerUp | OutboundEnded | RecordingReady
OutOutput = OutAction | OutNotice
OutInput = ev.Event | Tick | HangupRequest | ActionFailed | RecordingSettled


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """Everything known about one click-to-call; ``id`` also names its legs, bridge, recording."""

    id: str
    agent_endpoint: str
    customer_endpoint: str  # dial string for the customer, from the channel's trunk pattern
    number: str  # the customer's E.164 number
    ring_timeout: int  # the agent's phone
    customer_ring_timeout: int
    state: OutState
    started_at: float
    deadline: float | None = None
    agent_answered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    ringback: str | None = None  # playback id of the ring tone the agent hears
    recording_started: bool = False
    recording_done: bool = False

    @property
    def agent_channel(self) -> str:
        return f"out-{self.id}-a"

    @property
    def customer_channel(self) -> str:
        return f"out-{self.id}-c"

    @property
    def bridge_id(self) -> str:
        return f"bridge-out-{safe_name(self.id)}"

    @property
    def recording(self) -> str:
        return f"call-out-{safe_name(self.id)}"

    @property
    def finished(self) -> bool:
        """Ended and any recording reported: the worker may stop."""
        return self.state is OutState.ENDED and (not self.recording_started
                                                 or self.recording_done)


Step = tuple[OutboundCall, list[OutOutput]]


def event_target(event: ev.Event) -> str | None:
    """The channel or bridge an ARI event is about (the key watchers register under)."""
    if isinstance(event, ev.ChannelEvent):
        return event.channel.id
    if isinstance(event, ev.Dial):
        return event.peer.id
    if isinstance(event, ev.PlaybackStarted | ev.PlaybackFinished):
        return event.playback.target_uri.partition(":")[2]
    if isinstance(event, ev.RecordingStarted | ev.RecordingFinished | ev.RecordingFailed):
        return event.recording.target_uri.partition(":")[2]
    if isinstance(event, ev.BridgeDestroyed):
        return event.bridge.id
    return None


def customer_dial_string(pattern: str, number: str) -> str:
    """Fill ``{number}`` (E.164 with ``+``) or ``{digits}`` (without) into the trunk pattern."""
    return pattern.replace("{number}", number).replace("{digits}", number.lstrip("+"))


def new_outbound(call_id: str, *, agent_endpoint: str, customer_endpoint: str, number: str,
                 ring_timeout: int, customer_ring_timeout: int, now: float) -> Step:
    """Start a click-to-call: create the agent's leg (dialed once it is in the app)."""
    call = OutboundCall(id=call_id, agent_endpoint=agent_endpoint,
                        customer_endpoint=customer_endpoint, number=number,
                        ring_timeout=ring_timeout, customer_ring_timeout=customer_ring_timeout,
                        state=OutState.AGENT_RINGING, started_at=now,
                        deadline=now + ring_timeout)
    return call, [CreateLeg(agent_endpoint, call.agent_channel, call_id, "agent")]


def _gone(inp: OutInput, channel: str) -> bool:
    return (isinstance(inp, ev.StasisEnd | ev.ChannelDestroyed | ev.ChannelHangupRequest)
            and inp.channel.id == channel)


def _end(call: OutboundCall, reason: str, now: float, *, hang_agent: bool,
         hang_customer: bool) -> Step:
    out: list[OutOutput] = []
    if call.ringback is not None:
        out.append(StopPlayback(call.ringback))
    if hang_agent:
        out.append(Hangup(call.agent_channel))
    if hang_customer:
        out.append(Hangup(call.customer_channel))
    connected = call.answered_at is not None
    if connected:
        out.append(DestroyBridge(call.bridge_id))
    talk = max(0.0, now - call.answered_at) if call.answered_at is not None else 0.0
    call = replace(call, state=OutState.ENDED, end_reason=reason, deadline=None, ringback=None,
                   ended_at=now)
    return call, [*out, OutboundEnded(reason, connected, round(talk, 3))]


def _failure(inp: OutInput) -> str | None:
    """Why a ringing leg failed, if ``inp`` says it did (else None)."""
    if isinstance(inp, ev.Dial) and inp.dialstatus in FAILED_DIAL:
        return inp.dialstatus.lower()
    if isinstance(inp, ev.ChannelHangupRequest | ev.ChannelDestroyed):
        return hangup_reason(inp)
    if isinstance(inp, ev.StasisEnd):
        return "hangup"
    return None


def step(call: OutboundCall, inp: OutInput, now: float) -> Step:
    """Apply one input; late or unrelated inputs leave the call unchanged."""
    if isinstance(inp, ev.RecordingFinished | ev.RecordingFailed | RecordingSettled):
        # RecordingSettled: the event never came, ARI was asked (channels.voice.recordings)
        name = inp.name if isinstance(inp, RecordingSettled) else inp.recording.name
        ok = inp.stored if isinstance(inp, RecordingSettled) else isinstance(
            inp, ev.RecordingFinished)
        if name == call.recording and not call.recording_done:
            done = replace(call, recording_done=True)
            return done, [RecordingReady(call.recording)] if ok else []
        return call, []
    if call.state is OutState.ENDED:
        return call, []
    if isinstance(inp, HangupRequest):
        return _end(call, inp.reason, now, hang_agent=True,
                    hang_customer=call.state is not OutState.AGENT_RINGING)
    timed_out = isinstance(inp, Tick) and call.deadline is not None and now >= call.deadline
    a, c = call.agent_channel, call.customer_channel

    if call.state is OutState.AGENT_RINGING:
        if isinstance(inp, ev.StasisStart) and inp.channel.id == a:
            return call, [DialLeg(a, call.ring_timeout + 5)]
        answered = ((isinstance(inp, ev.Dial) and inp.peer.id == a and inp.dialstatus == "ANSWER")
                    or (isinstance(inp, ev.ChannelStateChange) and inp.channel.id == a
                        and inp.channel.state == "Up"))
        if answered:
            ring = f"{safe_name(call.id)}-ringback"
            call = replace(call, state=OutState.CUSTOMER_RINGING, agent_answered_at=now,
                           deadline=now + call.customer_ring_timeout, ringback=ring)
            return call, [AgentUp(a), Play(a, (RINGBACK,), ring),
                          CreateLeg(call.customer_endpoint, c, call.id, "customer")]
        if timed_out:
            return _end(call, "agent_noanswer", now, hang_agent=True, hang_customer=False)
        if isinstance(inp, ActionFailed) and isinstance(inp.action, CreateLeg | DialLeg):
            return _end(call, "agent_unreachable", now, hang_agent=True, hang_customer=False)
        peer = inp.peer.id if isinstance(inp, ev.Dial) else (
            inp.channel.id if isinstance(inp, ev.ChannelEvent) else None)
        why = _failure(inp) if peer == a else None
        if why is not None:
            return _end(call, f"agent_{why}", now, hang_agent=True, hang_customer=False)
        return call, []

    if call.state is OutState.CUSTOMER_RINGING:
        if _gone(inp, a):
            return _end(call, "agent_hangup", now, hang_agent=False, hang_customer=True)
        if isinstance(inp, ev.StasisStart) and inp.channel.id == c:
            return call, [DialLeg(c, call.customer_ring_timeout + 5)]
        answered = ((isinstance(inp, ev.Dial) and inp.peer.id == c and inp.dialstatus == "ANSWER")
                    or (isinstance(inp, ev.ChannelStateChange) and inp.channel.id == c
                        and inp.channel.state == "Up"))
        if answered:
            out: list[OutOutput] = [StopPlayback(call.ringback)] if call.ringback else []
            call = replace(call, state=OutState.CONNECTED, answered_at=now, deadline=None,
                           ringback=None, recording_started=True)
            return call, [*out, Bridge(call.bridge_id, (a, c)),
                          RecordBridge(call.bridge_id, call.recording), CustomerUp(c)]
        if timed_out:
            return _end(call, "customer_noanswer", now, hang_agent=True, hang_customer=True)
        if isinstance(inp, ActionFailed) and isinstance(inp.action, CreateLeg | DialLeg):
            return _end(call, "customer_unreachable", now, hang_agent=True, hang_customer=True)
        peer = inp.peer.id if isinstance(inp, ev.Dial) else (
            inp.channel.id if isinstance(inp, ev.ChannelEvent) else None)
        why = _failure(inp) if peer == c else None
        if why is not None:
            return _end(call, f"customer_{why}", now, hang_agent=True, hang_customer=True)
        return call, []

    # CONNECTED
    if _gone(inp, a):
        return _end(call, "agent_hangup", now, hang_agent=False, hang_customer=True)
    if _gone(inp, c):
        return _end(call, "customer_hangup", now, hang_agent=True, hang_customer=False)
    if isinstance(inp, ActionFailed) and isinstance(inp.action, RecordBridge):
        return replace(call, recording_started=False), []  # nothing will finish; do not wait
    return call, []
