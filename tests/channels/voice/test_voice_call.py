"""The per-call state machine, pure: every path of a call without Asterisk."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from channels.voice import call as sm
from channels.voice import events as ev
from channels.voice.ivr import IvrConfig, Menu, MenuOption

TS = datetime(2026, 11, 24, tzinfo=UTC)
CALL = "1700000000.1"
AGENT = "agent-abc"

SUPPORT = Menu("support", ("sound:support",), {"1": MenuOption("billing", queue="billing")},
               fallback_queue="support", timeout_s=3)
MAIN = Menu("main", ("sound:demo-congrats",),
            {"1": MenuOption("sales", queue="sales"),
             "2": MenuOption("support", submenu=SUPPORT)},
            fallback_queue="general", timeout_s=5, max_tries=2)
CONFIG = IvrConfig(menu=MAIN, default_queue="general", moh_class="default")


def chan(cid: str = CALL, state: str = "Up") -> ev.ChannelInfo:
    return ev.ChannelInfo(cid, f"PJSIP/{cid}", state, ev.CallerId("", "+14155550123"),
                          ev.CallerId("", ""))


def dtmf(d: str) -> ev.ChannelDtmfReceived:
    return ev.ChannelDtmfReceived("ChannelDtmfReceived", "app", TS, chan(), d, 100)


def hangup(cid: str, cause: int = 16) -> ev.ChannelHangupRequest:
    return ev.ChannelHangupRequest("ChannelHangupRequest", "app", TS, chan(cid), cause)


def dial(status: str) -> ev.Dial:
    return ev.Dial("Dial", "app", TS, chan(AGENT), status)


def agent_up() -> ev.StasisStart:
    """The originated agent leg answered: only then does it enter the app."""
    return ev.StasisStart("StasisStart", "app", TS, chan(AGENT, "Up"), ("agent", CALL))


def run(call: sm.Call, *inputs: sm.Input, now: float = 10.0) -> tuple[sm.Call, list[sm.Output]]:
    outs: list[sm.Output] = []
    for inp in inputs:
        call, more = sm.step(call, inp, now)
        outs += more
    return call, outs


def queued() -> sm.Call:
    call, _ = sm.new_call(CALL, CONFIG, 0.0)
    call, _ = sm.step(call, dtmf("1"), 2.0)
    assert call.state is sm.CallState.QUEUED
    return call


def connected() -> sm.Call:
    call, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), dial("ANSWER"), agent_up(),
                  now=4.0)
    assert call.state is sm.CallState.CONNECTED
    return call


def test_new_call_answers_and_plays_the_menu() -> None:
    call, outs = sm.new_call(CALL, CONFIG, 0.0)
    assert call.state is sm.CallState.IVR
    assert outs == [sm.Answer(CALL), sm.Play(CALL, ("sound:demo-congrats",), "1700000000-1-p1")]


def test_without_menu_the_call_goes_straight_to_the_queue_with_moh() -> None:
    call, outs = sm.new_call(CALL, IvrConfig(menu=None, default_queue="q"), 0.0)
    assert call.state is sm.CallState.QUEUED and call.queue == "q"
    assert outs == [sm.Answer(CALL), sm.StartMoh(CALL, "default"), sm.Queued("q")]


def test_digit_routes_to_queue_and_keeps_cti_data() -> None:
    call, _ = sm.new_call(CALL, CONFIG, 0.0)
    call, outs = sm.step(call, dtmf("1"), 2.0)
    assert call.state is sm.CallState.QUEUED
    assert (call.digits, call.ivr_path, call.queue) == ("1", ("sales",), "sales")
    assert outs == [sm.StopPlayback("1700000000-1-p1"), sm.StartMoh(CALL, "default"),
                    sm.Queued("sales")]


def test_submenu_path_is_recorded() -> None:
    call, _ = sm.new_call(CALL, CONFIG, 0.0)
    call, outs = run(call, dtmf("2"))
    assert call.state is sm.CallState.IVR and call.menu is SUPPORT
    assert sm.Play(CALL, ("sound:support",), "1700000000-1-p2") in outs
    call, _ = run(call, dtmf("1"))
    assert (call.digits, call.ivr_path, call.queue) == ("21", ("support", "billing"), "billing")


def test_invalid_digits_replay_then_fall_back() -> None:
    call, _ = sm.new_call(CALL, CONFIG, 0.0)
    call, outs = run(call, dtmf("9"))
    assert call.state is sm.CallState.IVR and call.tries == 1
    assert next(o for o in outs if isinstance(o, sm.Play)).media == (
        "sound:pm-invalid-option", "sound:demo-congrats")
    call, outs = run(call, dtmf("7"))
    assert call.state is sm.CallState.QUEUED and call.queue == "general"
    assert call.digits == ""  # invalid keys are not CTI data


def test_digit_timeout_counts_from_the_end_of_the_prompt() -> None:
    call, _ = sm.new_call(CALL, CONFIG, 0.0)
    assert call.deadline is None  # no timer while the prompt plays
    pb = ev.PlaybackFinished("PlaybackFinished", "app", TS, ev.PlaybackInfo(
        "1700000000-1-p1", "sound:demo-congrats", f"channel:{CALL}", "done"))
    call, _ = sm.step(call, pb, 3.0)
    assert call.deadline == 8.0
    same, outs = sm.step(call, sm.Tick(), 7.9)
    assert same == call and outs == []
    call, outs = sm.step(call, sm.Tick(), 8.0)
    assert call.tries == 1 and any(isinstance(o, sm.Play) for o in outs)


def test_offer_originates_the_agent_leg_in_one_request() -> None:
    offer = sm.Offer("PJSIP/agent1", AGENT, 15, caller_id="+14155550123")
    call, outs = sm.step(queued(), offer, 3.0)
    assert call.state is sm.CallState.OFFERING
    # Asterisk's own timeout is only a safety net behind our ring timer
    assert outs == [sm.OriginateAgent("PJSIP/agent1", AGENT, CALL, 20, "+14155550123")]
    call, outs = sm.step(call, dial("RINGING"), 3.2)
    assert call.state is sm.CallState.OFFERING and outs == []
    # the Dial ANSWER comes before the leg is in the app, where it can be bridged: wait for it
    call, outs = sm.step(call, dial("ANSWER"), 4.0)
    assert call.state is sm.CallState.OFFERING and outs == []
    call, outs = sm.step(call, agent_up(), 4.0)
    assert call.state is sm.CallState.CONNECTED and sm.AgentAnswered(AGENT) in outs


def test_a_cancelled_offer_hangs_up_its_ringing_leg_only() -> None:
    offering, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), dial("RINGING"))
    assert sm.step(offering, sm.CancelOffer("agent-other"), 5.0) == (offering, [])
    call, outs = sm.step(offering, sm.CancelOffer(AGENT), 5.0)
    assert call.state is sm.CallState.QUEUED and call.agent_channel is None
    assert outs == [sm.Hangup(AGENT), sm.AgentFailed(AGENT, "revoked")]
    assert sm.step(call, sm.CancelOffer(AGENT), 5.1) == (call, [])  # late: nothing to do
    assert sm.step(connected(), sm.CancelOffer(AGENT), 5.0)[1] == []  # answered: too late


def test_answer_stops_moh_only_then_bridges_and_records() -> None:
    call, outs = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), dial("ANSWER"),
                     agent_up(), now=4.0)
    bridge = "bridge-1700000000-1"
    assert outs[-4:] == [sm.StopMoh(CALL), sm.Bridge(bridge, (CALL, AGENT)),
                         sm.RecordBridge(bridge, "call-1700000000-1"), sm.AgentAnswered(AGENT)]
    assert call.answered_at == 4.0


def test_whisper_plays_to_the_agent_before_the_bridge() -> None:
    config = IvrConfig(menu=MAIN, whisper={"sales": ("sound:queue-sales",)})
    call, _ = sm.new_call(CALL, config, 0.0)
    call, _ = run(call, dtmf("1"), sm.Offer("PJSIP/agent1", AGENT, 15), dial("ANSWER"))
    call, outs = sm.step(call, agent_up(), 4.0)
    assert call.state is sm.CallState.OFFERING and call.deadline is None
    (play,) = outs
    assert isinstance(play, sm.Play) and play.channel == AGENT
    assert play.media == ("sound:queue-sales",)
    assert sm.step(call, sm.Tick(), 100.0) == (call, [])  # no ring timeout while whispering
    done = ev.PlaybackFinished("PlaybackFinished", "app", TS, ev.PlaybackInfo(
        play.playback_id, "sound:queue-sales", f"channel:{AGENT}", "done"))
    call, outs = sm.step(call, done, 5.0)
    assert call.state is sm.CallState.CONNECTED and outs[0] == sm.StopMoh(CALL)
    # a whisper that cannot play never blocks the call
    call2, _ = sm.new_call(CALL, config, 0.0)
    call2, outs = run(call2, dtmf("1"), sm.Offer("PJSIP/agent1", AGENT, 15), dial("ANSWER"),
                      agent_up())
    whisper = outs[-1]
    assert isinstance(whisper, sm.Play)
    call2, _ = sm.step(call2, sm.ActionFailed(whisper, "ari_not_found"), 5.0)
    assert call2.state is sm.CallState.CONNECTED


def test_ring_timeout_fails_the_offer_and_the_caller_keeps_moh() -> None:
    call, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), dial("RINGING"), now=3.0)
    assert call.deadline == 18.0
    call, outs = sm.step(call, sm.Tick(), 18.0)
    assert call.state is sm.CallState.QUEUED and call.agent_channel is None
    assert outs == [sm.Hangup(AGENT), sm.AgentFailed(AGENT, "noanswer")]
    assert not any(isinstance(o, sm.StopMoh) for o in outs)
    # the old leg's late hang-up does not disturb the queued caller
    assert sm.step(call, hangup(AGENT), 18.1) == (call, [])


def test_busy_and_rejection_reasons_come_from_the_hangup_cause() -> None:
    offering, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), dial("RINGING"))
    for cause, reason in ((17, "busy"), (21, "rejected"), (34, "congestion"), (16, "hangup")):
        _call, outs = sm.step(offering, hangup(AGENT, cause), 5.0)
        assert sm.AgentFailed(AGENT, reason) in outs
    _call, outs = sm.step(offering, dial("BUSY"), 5.0)
    assert sm.AgentFailed(AGENT, "busy") in outs
    failed = sm.ActionFailed(sm.OriginateAgent("x", AGENT, CALL, 20), "e")
    _call, outs = sm.step(offering, failed, 5)
    assert sm.AgentFailed(AGENT, "originate_failed") in outs


def test_offer_is_refused_unless_queued() -> None:
    ivr, _ = sm.new_call(CALL, CONFIG, 0.0)
    call, outs = sm.step(ivr, sm.Offer("PJSIP/agent1", AGENT), 1.0)
    assert call == ivr and outs == [sm.AgentFailed(AGENT, "call_ivr")]


def test_caller_abandons_in_queue_and_while_an_agent_rings() -> None:
    call, outs = sm.step(queued(), hangup(CALL), 9.5)
    assert call.state is sm.CallState.ENDED and call.finished
    assert outs == [sm.Ended("caller_hangup", True, 9.5)]
    offering, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), dial("RINGING"))
    call, outs = sm.step(offering, hangup(CALL), 11.0)
    assert outs == [sm.Hangup(AGENT), sm.AgentFailed(AGENT, "caller_gone"),
                    sm.Ended("caller_hangup", True, 11.0)]


def test_hold_and_unhold_move_the_caller_between_bridge_and_moh() -> None:
    call, outs = sm.step(connected(), sm.HoldRequest(), 5.0)
    bridge = "bridge-1700000000-1"
    assert call.state is sm.CallState.HELD
    assert outs == [sm.RemoveFromBridge(bridge, CALL), sm.StartMoh(CALL, "default")]
    call, outs = sm.step(call, sm.UnholdRequest(), 6.0)
    assert call.state is sm.CallState.CONNECTED
    assert outs == [sm.StopMoh(CALL), sm.AddToBridge(bridge, CALL)]
    assert sm.step(call, sm.UnholdRequest(), 6.0) == (call, [])


def test_agent_hangup_ends_the_call_and_recording_is_reported_once() -> None:
    call, outs = sm.step(connected(), hangup(AGENT), 30.0)
    assert call.state is sm.CallState.ENDED and not call.finished
    assert outs == [sm.Hangup(CALL), sm.DestroyBridge("bridge-1700000000-1"),
                    sm.Ended("agent_hangup", False, 4.0)]
    info = ev.RecordingInfo("call-1700000000-1", "wav", "bridge:bridge-1700000000-1", "done")
    done = ev.RecordingFinished("RecordingFinished", "app", TS, info)
    call, outs = sm.step(call, done, 31.0)
    assert outs == [sm.RecordingReady("call-1700000000-1")] and call.finished
    assert sm.step(call, done, 32.0) == (call, [])


def test_a_recording_whose_event_was_lost_is_settled_by_asking_ari() -> None:
    """The end event of a bridge recording can be lost; what ARI says settles it instead."""
    name = "call-1700000000-1"
    ended, _ = sm.step(connected(), sm.HangupRequest(), 8.0)
    assert ended.pending_recordings == (name,)
    call, outs = sm.step(ended, sm.RecordingSettled(name, stored=True), 10.0)
    assert outs == [sm.RecordingReady(name)] and call.finished
    info = ev.RecordingInfo(name, "wav", "bridge:bridge-1700000000-1", "done")
    late = ev.RecordingFinished("RecordingFinished", "app", TS, info)
    assert sm.step(call, late, 11.0) == (call, [])  # the event after all: reported once
    call, outs = sm.step(ended, sm.RecordingSettled(name, stored=False), 10.0)
    assert outs == [] and call.finished  # failed: no file, nothing to wait for
    assert sm.step(ended, sm.RecordingSettled("other", stored=True), 10.0) == (ended, [])


def test_hub_hangup_clears_both_legs() -> None:
    call, outs = sm.step(connected(), sm.HangupRequest(), 8.0)
    assert outs[:3] == [sm.Hangup(CALL), sm.Hangup(AGENT),
                        sm.DestroyBridge("bridge-1700000000-1")]
    assert call.end_reason == "hub"


def test_resync_after_missed_events() -> None:
    q = queued()
    assert sm.step(q, sm.Resync({CALL: "Up"}), 9.0)[1] == [sm.StartMoh(CALL, "default")]
    gone, outs = sm.step(q, sm.Resync({}), 9.0)
    assert gone.state is sm.CallState.ENDED and outs[-1] == sm.Ended("lost", True, 9.0)
    offering, _ = run(q, sm.Offer("PJSIP/agent1", AGENT, 15), dial("RINGING"))
    up, outs = sm.step(offering, sm.Resync({CALL: "Up", AGENT: "Up"}), 9.0)
    assert up.state is sm.CallState.CONNECTED and sm.AgentAnswered(AGENT) in outs
    lost, outs = sm.step(offering, sm.Resync({CALL: "Up"}), 9.0)
    assert lost.state is sm.CallState.QUEUED
    assert outs[0] == sm.StartMoh(CALL, "default") and sm.AgentFailed(AGENT, "lost") in outs
    still, outs = sm.step(connected(), sm.Resync({CALL: "Up", AGENT: "Up"}), 9.0)
    assert still.state is sm.CallState.CONNECTED and outs == []


def test_adopted_calls_resume_queue_or_bridge() -> None:
    call, outs = sm.adopt_call(CALL, CONFIG, 1.0)
    assert call.state is sm.CallState.QUEUED
    assert outs == [sm.StartMoh(CALL, "default"), sm.Queued("general")]
    call, outs = sm.adopt_call(CALL, CONFIG, 1.0, bridge_id="b", agent_channel=AGENT)
    assert call.state is sm.CallState.CONNECTED and outs == []
    assert call.recording == "call-1700000000-1"


def test_an_adopted_call_after_a_transfer_keeps_its_leg_numbering() -> None:
    """The second agent's bridge records ``call-<id>-2``: adopting it after a restart must wait
    for that recording (not the first leg's, long finished), and a further transfer must name
    the third leg's bridge and recording, not reuse the first's."""
    call, _ = sm.adopt_call(CALL, CONFIG, 1.0, bridge_id="bridge-1700000000-1-2",
                            agent_channel=AGENT)
    assert call.recording == "call-1700000000-1-2" and call.legs == 2
    first, _ = sm.adopt_call(CALL, CONFIG, 1.0, bridge_id="bridge-1700000000-1",
                             agent_channel=AGENT)
    assert first.recording == "call-1700000000-1" and first.legs == 1
    # a blind transfer after the restart: the caller goes back to the queue, and the next
    # agent who answers gets leg 3's names
    requeued, _ = sm.step(call, sm.RequeueRequest(), 2.0)
    assert requeued.state is sm.CallState.QUEUED
    assert requeued.old_recordings == ("call-1700000000-1-2",)
    again, outs = run(requeued, sm.Offer("PJSIP/agent1", AGENT, 15), dial("ANSWER"), agent_up())
    assert again.state is sm.CallState.CONNECTED
    assert (again.bridge_id, again.recording) == ("bridge-1700000000-1-3", "call-1700000000-1-3")
    assert sm.RecordBridge("bridge-1700000000-1-3", "call-1700000000-1-3") in outs


def test_a_recording_that_never_started_is_not_waited_for() -> None:
    call = connected()
    failed = sm.ActionFailed(sm.RecordBridge("bridge-1700000000-1", "call-1700000000-1"), "x")
    call, outs = sm.step(call, failed, 5.0)
    assert call.recording is None and outs == []
    call, _ = sm.step(call, sm.HangupRequest(), 6.0)
    assert call.finished


INPUTS: list[sm.Input] = [
    dtmf("1"), dtmf("2"), dtmf("9"), sm.Tick(), sm.Offer("PJSIP/agent1", AGENT, 5),
    dial("RINGING"), dial("ANSWER"), agent_up(), dial("BUSY"), hangup(AGENT, 17),
    sm.CancelOffer(AGENT), sm.HoldRequest(),
    sm.UnholdRequest(), sm.Resync({CALL: "Up"}), sm.Resync({CALL: "Up", AGENT: "Up"}),
    hangup(CALL), sm.HangupRequest(),
]


@given(st.lists(st.sampled_from(INPUTS), max_size=25))
def test_invariants_hold_for_any_input_sequence(seq: list[sm.Input]) -> None:
    call, outs = sm.new_call(CALL, CONFIG, 0.0)
    ended = 0
    for i, inp in enumerate(seq):
        before = call.state
        call, outs = sm.step(call, inp, float(i))
        ended += sum(isinstance(o, sm.Ended) for o in outs)
        if before is sm.CallState.ENDED:
            assert call.state is sm.CallState.ENDED  # absorbing
            # no more ARI actions; only refusals of late offers
            assert all(isinstance(o, sm.RecordingReady | sm.AgentFailed) for o in outs)
        if any(isinstance(o, sm.StopMoh) for o in outs):
            # music stops only when the caller joins (or rejoins) the agent
            assert call.state is sm.CallState.CONNECTED
        if call.state in (sm.CallState.QUEUED, sm.CallState.OFFERING):
            assert call.bridge_id is None
    assert ended == (1 if call.state is sm.CallState.ENDED else 0)
