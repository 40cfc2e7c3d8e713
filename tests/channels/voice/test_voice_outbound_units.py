"""The click-to-call state machine and the monitor modes, pure: every path without Asterisk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.voice import events as ev
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
from channels.voice.outbound import (
    RINGBACK,
    AgentUp,
    CreateLeg,
    CustomerUp,
    DialLeg,
    OutboundCall,
    OutboundEnded,
    OutInput,
    OutOutput,
    OutState,
    customer_dial_string,
    event_target,
    new_outbound,
    step,
)
from channels.voice.snoop import MODES, MonitorError, check_mode

TS = datetime(2026, 11, 24, tzinfo=UTC)


def start() -> OutboundCall:
    call, outs = new_outbound("c1", agent_endpoint="PJSIP/agent1",
                              customer_endpoint="PJSIP/+14155550199@trunk", number="+14155550199",
                              ring_timeout=10, customer_ring_timeout=30, now=0.0)
    assert outs == [CreateLeg("PJSIP/agent1", call.agent_channel, "c1", "agent")]
    assert call.state is OutState.AGENT_RINGING and call.deadline == 10.0
    return call


def chan(cid: str, state: str = "Up") -> ev.ChannelInfo:
    return ev.ChannelInfo(cid, f"PJSIP/{cid}", state, ev.CallerId("", ""), ev.CallerId("", ""))


def stasis(cid: str) -> ev.StasisStart:
    return ev.StasisStart("StasisStart", "app", TS, chan(cid, "Down"), ("outbound", "c1"))


def dial(cid: str, status: str) -> ev.Dial:
    return ev.Dial("Dial", "app", TS, chan(cid), status)


def hangup(cid: str, cause: int = 16) -> ev.ChannelHangupRequest:
    return ev.ChannelHangupRequest("ChannelHangupRequest", "app", TS, chan(cid), cause)


def rec_done(name: str) -> ev.RecordingFinished:
    return ev.RecordingFinished("RecordingFinished", "app", TS,
                                ev.RecordingInfo(name, "wav", "bridge:b", "done"))


def run(call: OutboundCall, *inputs: OutInput, now: float = 1.0) -> tuple[OutboundCall,
                                                                          list[OutOutput]]:
    outs: list[OutOutput] = []
    for inp in inputs:
        call, more = step(call, inp, now)
        outs += more
    return call, outs


def connected() -> OutboundCall:
    call = start()
    a, c = call.agent_channel, call.customer_channel
    call, _ = run(call, stasis(a), dial(a, "ANSWER"), stasis(c), dial(c, "ANSWER"), now=2.0)
    assert call.state is OutState.CONNECTED
    return call


def test_agent_first_then_customer_then_bridge_and_record() -> None:
    call = start()
    a, c = call.agent_channel, call.customer_channel
    call, outs = run(call, stasis(a))
    assert outs == [DialLeg(a, 15)]  # dialed only once it is in the app
    call, outs = run(call, dial(a, ""), now=1.0)  # still ringing
    assert outs == [] and call.state is OutState.AGENT_RINGING
    call, outs = run(call, dial(a, "ANSWER"), now=3.0)
    assert call.state is OutState.CUSTOMER_RINGING and call.deadline == 33.0
    assert outs == [AgentUp(a), Play(a, (RINGBACK,), "c1-ringback"),
                    CreateLeg("PJSIP/+14155550199@trunk", c, "c1", "customer")]
    call, outs = run(call, stasis(c), now=3.5)
    assert outs == [DialLeg(c, 35)]
    call, outs = run(call, dial(c, "ANSWER"), now=9.0)
    assert call.state is OutState.CONNECTED and call.deadline is None
    assert outs == [StopPlayback("c1-ringback"), Bridge(call.bridge_id, (a, c)),
                    RecordBridge(call.bridge_id, call.recording), CustomerUp(c)]
    call, outs = run(call, hangup(c), now=39.0)
    assert call.state is OutState.ENDED and not call.finished  # waits for its recording
    assert outs == [Hangup(a), DestroyBridge(call.bridge_id),
                    OutboundEnded("customer_hangup", True, 30.0)]
    call, outs = run(call, rec_done(call.recording))
    assert outs == [RecordingReady(call.recording)] and call.finished


@pytest.mark.parametrize(("inp", "reason"), [
    (dial("out-c1-a", "BUSY"), "agent_busy"),
    (hangup("out-c1-a", 17), "agent_busy"),
    (hangup("out-c1-a", 1), "agent_chanunavail"),
    (Tick(), "agent_noanswer"),
    (ActionFailed(CreateLeg("x", "out-c1-a", "c1", "agent"), "ari_bad_request"),  # type: ignore[arg-type]
     "agent_unreachable"),
])
def test_agent_leg_failures_end_before_the_customer_is_dialed(inp: OutInput, reason: str) -> None:
    call, outs = run(start(), inp, now=11.0)
    assert call.state is OutState.ENDED and call.finished  # nothing was recorded
    assert outs[-1] == OutboundEnded(reason, False, 0.0)
    assert not any(isinstance(o, CreateLeg) for o in outs)
    assert Hangup(call.agent_channel) in outs


@pytest.mark.parametrize(("inp", "reason"), [
    (dial("out-c1-c", "BUSY"), "customer_busy"),
    (dial("out-c1-c", "CONGESTION"), "customer_congestion"),
    (hangup("out-c1-c", 17), "customer_busy"),
    (hangup("out-c1-c", 19), "customer_noanswer"),
    (Tick(), "customer_noanswer"),
    (hangup("out-c1-a"), "agent_hangup"),
])
def test_customer_leg_failures_hang_up_the_agent(inp: OutInput, reason: str) -> None:
    call = start()
    call, _ = run(call, stasis(call.agent_channel), dial(call.agent_channel, "ANSWER"))
    call, outs = run(call, inp, now=40.0)
    assert call.state is OutState.ENDED and call.end_reason == reason
    assert StopPlayback("c1-ringback") in outs
    assert outs[-1] == OutboundEnded(reason, False, 0.0)
    if reason != "agent_hangup":
        assert Hangup(call.agent_channel) in outs


def test_hub_hangup_in_each_state_and_late_events_are_ignored() -> None:
    ringing = start()
    call, outs = run(ringing, HangupRequest())
    assert outs == [Hangup(ringing.agent_channel), OutboundEnded("hub", False, 0.0)]
    call, outs = run(connected(), HangupRequest(), now=5.0)
    assert outs[-1] == OutboundEnded("hub", True, 3.0)
    assert {Hangup(call.agent_channel), Hangup(call.customer_channel)} <= set(outs)
    call, outs = run(call, dial(call.customer_channel, "ANSWER"), hangup(call.agent_channel),
                     Tick(), HangupRequest())
    assert outs == [] and call.state is OutState.ENDED


def test_a_lost_recording_event_is_settled_by_what_ari_says() -> None:
    ended, _ = run(connected(), HangupRequest(), now=5.0)
    assert not ended.finished
    call, outs = run(ended, RecordingSettled(ended.recording, stored=True))
    assert outs == [RecordingReady(ended.recording)] and call.finished
    assert run(call, rec_done(ended.recording)) == (call, [])  # reported once
    call, outs = run(ended, RecordingSettled(ended.recording, stored=False))
    assert outs == [] and call.finished


def test_failed_bridge_recording_is_not_waited_for() -> None:
    call = connected()
    call, _ = run(call, ActionFailed(RecordBridge(call.bridge_id, call.recording), "x"))
    call, _ = run(call, hangup(call.agent_channel))
    assert call.finished


ANY_INPUT = st.sampled_from([
    stasis("out-c1-a"), stasis("out-c1-c"), dial("out-c1-a", "ANSWER"), dial("out-c1-c", "ANSWER"),
    dial("out-c1-a", "BUSY"), dial("out-c1-c", "NOANSWER"), hangup("out-c1-a"),
    hangup("out-c1-c"), Tick(), HangupRequest(), rec_done("call-out-c1"),
])


@given(st.lists(ANY_INPUT, max_size=12), st.lists(st.floats(0, 100), min_size=12, max_size=12))
def test_any_sequence_ends_at_most_once_and_never_acts_after_the_end(
    inputs: list[OutInput], times: list[float]
) -> None:
    call = start()
    ends = 0
    for inp, now in zip(inputs, sorted(times), strict=False):
        was_ended = call.state is OutState.ENDED
        call, outs = step(call, inp, now)
        ends += sum(isinstance(o, OutboundEnded) for o in outs)
        if was_ended:
            assert all(isinstance(o, RecordingReady) for o in outs)
        if call.state is OutState.CONNECTED:
            assert call.recording_started
    assert ends <= 1


def test_dial_string_event_target_and_monitor_modes() -> None:
    assert customer_dial_string("PJSIP/{number}@trunk", "+4930123") == "PJSIP/+4930123@trunk"
    assert customer_dial_string("SIP/{digits}@gw", "+4930123") == "SIP/4930123@gw"
    assert event_target(dial("x", "ANSWER")) == "x"
    assert event_target(hangup("y")) == "y"
    assert event_target(rec_done("r")) == "b"
    assert event_target(ev.UnknownEvent("ChannelVarset", "app", TS)) is None
    assert MODES["listen"] == ("both", "none")  # the supervisor is never heard
    assert MODES["whisper"] == ("both", "out")  # only towards the agent's phone
    assert MODES["barge"] == ("both", "both")
    assert check_mode("barge") == "barge"
    with pytest.raises(MonitorError) as err:
        check_mode("spy")
    assert err.value.code == "bad_mode"
