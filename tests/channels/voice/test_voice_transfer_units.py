"""Blind and attended transfers in the per-call state machine, pure."""

from __future__ import annotations

from channels.voice import call as sm
from channels.voice import events as ev
from tests.channels.voice.test_voice_call import AGENT, CALL, TS, chan, connected, run
from tests.channels.voice.test_voice_queue_units import recorded

TARGET = "consult-xyz"
BRIDGE = "bridge-1700000000-1"


def target_start() -> ev.StasisStart:
    return ev.StasisStart("StasisStart", "app", TS, chan(TARGET, "Down"), ("agent", CALL))


def target_dial(status: str) -> ev.Dial:
    return ev.Dial("Dial", "app", TS, chan(TARGET), status)


def gone(cid: str) -> ev.ChannelDestroyed:
    return ev.ChannelDestroyed("ChannelDestroyed", "app", TS, chan(cid), 16)


def consulting() -> sm.Call:
    call, outs = sm.step(connected(), sm.ConsultRequest("PJSIP/agent2", TARGET, 10), 20.0)
    assert call.state is sm.CallState.CONSULTING and call.deadline == 30.0
    assert outs == [sm.RemoveFromBridge(BRIDGE, CALL), sm.StartMoh(CALL, "default"),
                    sm.CreateAgentLeg("PJSIP/agent2", TARGET, CALL)]
    return call


def consulted() -> sm.Call:
    call, outs = run(consulting(), target_start(), target_dial("ANSWER"), now=22.0)
    assert call.state is sm.CallState.CONSULTED
    assert outs == [sm.DialAgent(TARGET, AGENT, 15), sm.AddToBridge(BRIDGE, TARGET),
                    sm.AgentAnswered(TARGET)]
    return call


def test_blind_transfer_requeues_the_caller_and_closes_the_first_recording() -> None:
    call, outs = sm.step(connected(), sm.RequeueRequest(), 30.0)
    assert call.state is sm.CallState.QUEUED and call.agent_channel is None
    assert outs == [sm.Hangup(AGENT), sm.DestroyBridge(BRIDGE), sm.StartMoh(CALL, "default")]
    assert call.old_recordings == ("call-1700000000-1",) and call.recording is None
    # the next agent gets a bridge and recording of their own
    second = "agent-two"
    call, outs = run(call, sm.Offer("PJSIP/agent2", second, 15),
                     ev.StasisStart("StasisStart", "app", TS, chan(second), ("agent", CALL)),
                     now=31.0)
    assert call.state is sm.CallState.CONNECTED
    assert sm.Bridge(f"{BRIDGE}-2", (CALL, second)) in outs
    assert sm.RecordBridge(f"{BRIDGE}-2", "call-1700000000-1-2") in outs
    assert call.answered_at == 4.0  # the caller's wait ended with the first answer
    # both recordings are reported before the call is finished
    call, _ = sm.step(call, sm.HangupRequest(), 40.0)
    assert not call.finished
    call, outs = sm.step(call, recorded("call-1700000000-1"), 40.1)
    assert outs == [sm.RecordingReady("call-1700000000-1")] and not call.finished
    call, outs = sm.step(call, recorded("call-1700000000-1-2"), 40.2)
    assert outs == [sm.RecordingReady("call-1700000000-1-2")] and call.finished


def test_blind_transfer_from_hold_and_not_while_queued() -> None:
    held, _ = sm.step(connected(), sm.HoldRequest(), 10.0)
    call, _ = sm.step(held, sm.RequeueRequest(), 11.0)
    assert call.state is sm.CallState.QUEUED
    assert sm.step(call, sm.RequeueRequest(), 12.0) == (call, [])


def test_attended_transfer_complete() -> None:
    call, outs = sm.step(consulted(), sm.CompleteTransfer(), 30.0)
    assert call.state is sm.CallState.CONNECTED and call.agent_channel == TARGET
    assert outs == [sm.StopMoh(CALL), sm.AddToBridge(BRIDGE, CALL), sm.Hangup(AGENT),
                    sm.Transferred(AGENT, TARGET)]
    # the first agent's leg going away later is not the end of the call
    call, outs = sm.step(call, gone(AGENT), 30.5)
    assert call.state is sm.CallState.CONNECTED and outs == []
    call, outs = sm.step(call, gone(TARGET), 60.0)
    assert call.state is sm.CallState.ENDED and call.end_reason == "agent_hangup"


def test_attended_transfer_cancel_returns_to_the_caller() -> None:
    call, outs = sm.step(consulted(), sm.CancelTransfer(), 30.0)
    assert call.state is sm.CallState.CONNECTED and call.agent_channel == AGENT
    assert outs == [sm.Hangup(TARGET), sm.StopMoh(CALL), sm.AddToBridge(BRIDGE, CALL)]


def test_cancel_while_the_target_still_rings() -> None:
    call, outs = sm.step(consulting(), sm.CancelTransfer(), 25.0)
    assert call.state is sm.CallState.CONNECTED and call.consult_channel is None
    assert outs == [sm.Hangup(TARGET), sm.StopMoh(CALL), sm.AddToBridge(BRIDGE, CALL),
                    sm.AgentFailed(TARGET, "cancelled")]


def test_target_not_answering_leaves_the_caller_on_hold() -> None:
    call, outs = sm.step(consulting(), sm.Tick(), 30.0)
    assert call.state is sm.CallState.HELD and call.consult_channel is None
    assert outs == [sm.Hangup(TARGET), sm.AgentFailed(TARGET, "noanswer")]
    call, outs = run(consulting(), target_start(), target_dial("BUSY"), now=21.0)
    assert call.state is sm.CallState.HELD and sm.AgentFailed(TARGET, "busy") in outs


def test_target_hanging_up_during_consult_reconnects_the_caller() -> None:
    call, outs = sm.step(consulted(), gone(TARGET), 30.0)
    assert call.state is sm.CallState.CONNECTED
    assert outs[-2:] == [sm.StopMoh(CALL), sm.AddToBridge(BRIDGE, CALL)]


def test_agent_hanging_up_after_consult_completes_the_transfer() -> None:
    call, outs = sm.step(consulted(), gone(AGENT), 30.0)
    assert call.state is sm.CallState.CONNECTED and call.agent_channel == TARGET
    assert sm.Transferred(AGENT, TARGET) in outs


def test_agent_hanging_up_while_the_target_rings_ends_the_call_and_the_consult_leg() -> None:
    call, outs = sm.step(consulting(), gone(AGENT), 25.0)
    assert call.state is sm.CallState.ENDED
    assert sm.Hangup(TARGET) in outs and sm.Hangup(CALL) in outs


def test_caller_hanging_up_during_consult_ends_everything() -> None:
    call, outs = sm.step(consulted(), ev.StasisEnd("StasisEnd", "app", TS, chan()), 25.0)
    assert call.state is sm.CallState.ENDED and call.end_reason == "caller_hangup"
    assert sm.Hangup(TARGET) in outs and sm.Hangup(AGENT) in outs


def test_consult_refused_unless_talking_and_offer_refused_while_consulting() -> None:
    call = consulting()
    assert sm.step(call, sm.ConsultRequest("PJSIP/x", "c2", 5), 21.0) == (call, [])
    _, outs = sm.step(call, sm.Offer("PJSIP/agent1", "a3", 5), 21.0)
    assert outs == [sm.AgentFailed("a3", "call_consulting")]


def test_resync_with_the_consult_leg_lost_reconnects_the_caller() -> None:
    call, outs = sm.step(consulted(), sm.Resync({CALL: "Up", AGENT: "Up"}), 30.0)
    assert call.state is sm.CallState.CONNECTED
    assert sm.AddToBridge(BRIDGE, CALL) in outs

