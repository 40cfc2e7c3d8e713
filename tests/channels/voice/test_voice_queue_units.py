"""The queue experience in the per-call state machine, pure: announcements, callback, voicemail."""

from __future__ import annotations

from dataclasses import replace

from channels.voice import call as sm
from channels.voice import events as ev
from channels.voice.call_queue import announce_media
from channels.voice.ivr import IvrConfig
from tests.channels.voice.test_voice_call import (
    AGENT,
    CALL,
    CONFIG,
    TS,
    agent_up,
    chan,
    dtmf,
    run,
)

ANNOUNCING = replace(CONFIG, announce_s=20.0, announce_queues={"vip": 5.0}, callback_digit="1")


def played(pid: str) -> ev.PlaybackFinished:
    return ev.PlaybackFinished("PlaybackFinished", "app", TS,
                               ev.PlaybackInfo(pid, "sound:x", f"channel:{CALL}", "done"))


def recorded(name: str, ok: bool = True) -> ev.RecordingFinished | ev.RecordingFailed:
    info = ev.RecordingInfo(name, "wav", f"channel:{CALL}", "done")
    if ok:
        return ev.RecordingFinished("RecordingFinished", "app", TS, info)
    return ev.RecordingFailed("RecordingFailed", "app", TS, info)


def caller_gone() -> ev.StasisEnd:
    return ev.StasisEnd("StasisEnd", "app", TS, chan())


def queued(config: IvrConfig = ANNOUNCING) -> sm.Call:
    call, _ = sm.new_call(CALL, config, 0.0)
    call, _ = sm.step(call, dtmf("1"), 2.0)
    assert call.state is sm.CallState.QUEUED
    return call


def test_announcement_words_follow_app_queue() -> None:
    assert announce_media(1, None, holdtime=True) == ("sound:queue-youarenext",
                                                      "sound:queue-thankyou")
    assert announce_media(3, 250.0, holdtime=True) == (
        "sound:queue-thereare", "number:3", "sound:queue-callswaiting", "sound:queue-holdtime",
        "number:5", "sound:queue-minutes", "sound:queue-thankyou")
    assert announce_media(2, 30.0, holdtime=True)[3:7] == (
        "sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute")
    assert "sound:queue-holdtime" not in announce_media(2, 30.0, holdtime=False)


def test_queued_call_announces_position_on_its_interval_then_moh_resumes() -> None:
    call = queued()
    assert call.deadline == 22.0  # entered the queue at 2.0, every 20 s
    same, outs = sm.step(call, sm.Tick(sm.QueueStatus(2, 90.0)), 21.9)
    assert outs == [] and same.announce_id is None
    call, outs = sm.step(call, sm.Tick(sm.QueueStatus(2, 90.0)), 22.0)
    pid = call.announce_id
    assert pid is not None and call.deadline is None and (call.position, call.ewt_s) == (2, 90.0)
    assert outs == [sm.StopMoh(CALL), sm.Play(CALL, announce_media(2, 90.0, holdtime=True), pid)]
    call, outs = sm.step(call, played(pid), 30.0)
    assert outs == [sm.StartMoh(CALL, "default")]
    assert call.announce_id is None and call.deadline == 50.0 and call.announcements == 1


def test_no_news_from_the_hub_means_no_announcement() -> None:
    call, outs = sm.step(queued(), sm.Tick(), 22.0)
    assert outs == [] and call.deadline == 42.0 and call.announcements == 0


def test_interval_per_queue_and_off_by_default() -> None:
    assert queued(replace(ANNOUNCING, announce_queues={"sales": 5.0})).deadline == 7.0
    assert queued(CONFIG).deadline is None


def test_failed_announcement_playback_resumes_moh() -> None:
    call, _ = sm.step(queued(), sm.Tick(sm.QueueStatus(1)), 22.0)
    pid = call.announce_id
    assert pid is not None
    failed = sm.ActionFailed(sm.Play(CALL, ("x",), pid), "ari_not_found")
    call, outs = sm.step(call, failed, 22.1)
    assert outs == [sm.StartMoh(CALL, "default")] and call.announce_id is None


def test_agent_answering_during_an_announcement_stops_it() -> None:
    call, _ = sm.step(queued(), sm.Tick(sm.QueueStatus(1)), 22.0)
    pid = call.announce_id
    call, outs = run(call, sm.Offer("PJSIP/agent1", AGENT, 15),
                     ev.Dial("Dial", "app", TS, chan(AGENT), "ANSWER"), agent_up(), now=23.0)
    assert call.state is sm.CallState.CONNECTED
    assert outs.index(sm.StopPlayback(pid or "")) < outs.index(sm.StopMoh(CALL))
    assert call.announce_id is None


def test_announcement_ending_while_an_agent_rings_resumes_moh_keeping_the_ring_timer() -> None:
    call, _ = sm.step(queued(), sm.Tick(sm.QueueStatus(1)), 22.0)
    pid = call.announce_id or ""
    call, _ = run(call, sm.Offer("PJSIP/agent1", AGENT, 15), now=23.0)
    call, outs = sm.step(call, played(pid), 24.0)
    assert outs == [sm.StartMoh(CALL, "default")]
    assert call.state is sm.CallState.OFFERING and call.deadline == 38.0


def test_agent_failing_returns_to_queue_with_the_next_announcement_armed() -> None:
    call, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 4), now=10.0)
    call, outs = sm.step(call, sm.Tick(), 14.0)
    assert call.state is sm.CallState.QUEUED and call.deadline == 34.0
    assert sm.AgentFailed(AGENT, "noanswer") in outs


def test_caller_presses_callback_digit_hears_goodbye_and_leaves_with_reason_callback() -> None:
    call, outs = sm.step(queued(), dtmf("1"), 5.0)
    assert call.state is sm.CallState.FAREWELL and call.leave_reason == "callback"
    pid = call.playback_id or ""
    assert outs == [sm.StopMoh(CALL), sm.Play(CALL, ANNOUNCING.goodbye_prompts, pid)]
    call, outs = sm.step(call, played(pid), 7.0)
    assert outs == [sm.Hangup(CALL)]
    call, outs = sm.step(call, caller_gone(), 7.1)
    assert call.state is sm.CallState.ENDED and call.finished
    assert outs == [sm.Ended("callback", False, 7.1)]


def test_callback_digit_ignored_when_not_configured() -> None:
    call = queued(CONFIG)
    assert sm.step(call, dtmf("1"), 5.0) == (call, [])


def test_callback_while_an_agent_rings_hangs_the_agent_up() -> None:
    call, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), now=3.0)
    call, outs = sm.step(call, dtmf("1"), 5.0)
    assert call.state is sm.CallState.FAREWELL and call.agent_channel is None
    assert sm.Hangup(AGENT) in outs and sm.AgentFailed(AGENT, "caller_gone") in outs


def test_router_callback_offer_pressing_the_digit() -> None:
    call, outs = sm.step(queued(CONFIG), sm.CallbackOfferRequest(), 5.0)
    assert call.state is sm.CallState.CALLBACK_OFFER
    pid = call.playback_id or ""
    assert outs == [sm.StopMoh(CALL), sm.Play(
        CALL, ("sound:vm-tocallback", "sound:vm-press", "sound:digits/1"), pid)]
    call, _ = sm.step(call, played(pid), 8.0)
    assert call.deadline == 14.0
    assert sm.step(call, dtmf("7"), 9.0) == (call, [])
    call, outs = sm.step(call, dtmf("1"), 9.0)
    assert call.state is sm.CallState.FAREWELL and call.leave_reason == "callback"


def test_router_callback_offer_unanswered_goes_to_voicemail() -> None:
    call, _ = sm.step(queued(CONFIG), sm.CallbackOfferRequest(), 5.0)
    call, _ = sm.step(call, played(call.playback_id or ""), 8.0)
    call, outs = sm.step(call, sm.Tick(), 14.0)  # second offer
    assert isinstance(outs[0], sm.Play)
    assert call.state is sm.CallState.CALLBACK_OFFER and call.tries == 1
    call, _ = sm.step(call, played(call.playback_id or ""), 17.0)
    call, _ = sm.step(call, sm.Tick(), 23.0)
    assert call.state is sm.CallState.VOICEMAIL and call.leave_reason == "voicemail"


def test_voicemail_greeting_beep_record_then_caller_hangs_up() -> None:
    call, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15), now=3.0)
    call, outs = sm.step(call, sm.VoicemailRequest(), 5.0)
    assert call.state is sm.CallState.VOICEMAIL
    pid = call.playback_id or ""
    assert outs == [sm.StopMoh(CALL), sm.Hangup(AGENT), sm.AgentFailed(AGENT, "caller_gone"),
                    sm.Play(CALL, ("sound:vm-intro",), pid)]
    call, outs = sm.step(call, played(pid), 9.0)
    name = "vm-1700000000-1"
    assert outs == [sm.RecordCaller(CALL, name, 120)] and call.voicemail == name
    call, outs = sm.step(call, caller_gone(), 20.0)
    assert call.state is sm.CallState.ENDED and not call.finished  # the WAV is still to come
    assert outs == [sm.Ended("voicemail", False, 20.0)]
    call, outs = sm.step(call, recorded(name), 20.2)
    assert outs == [sm.VoicemailReady(name)] and call.finished


def test_voicemail_ended_with_pound_says_goodbye() -> None:
    call, _ = sm.step(queued(), sm.VoicemailRequest(), 5.0)
    call, _ = sm.step(call, played(call.playback_id or ""), 9.0)
    call, outs = sm.step(call, recorded(call.voicemail or ""), 15.0)
    assert call.state is sm.CallState.FAREWELL
    assert outs[0] == sm.VoicemailReady("vm-1700000000-1")
    assert isinstance(outs[1], sm.Play) and outs[1].media == ANNOUNCING.goodbye_prompts


def test_voicemail_recording_that_cannot_start_says_goodbye() -> None:
    call, _ = sm.step(queued(), sm.VoicemailRequest(), 5.0)
    call, outs = sm.step(call, played(call.playback_id or ""), 9.0)
    call, outs = sm.step(call, sm.ActionFailed(outs[0], "ari_conflict"), 9.1)  # type: ignore[arg-type]
    assert call.state is sm.CallState.FAREWELL and call.voicemail is None


def test_voicemail_request_after_an_agent_answered_is_refused() -> None:
    call, _ = run(queued(), sm.Offer("PJSIP/agent1", AGENT, 15),
                  ev.Dial("Dial", "app", TS, chan(AGENT), "ANSWER"), agent_up(), now=3.0)
    assert sm.step(call, sm.VoicemailRequest(), 5.0) == (call, [])


def test_queue_status_input_updates_what_is_known() -> None:
    call, outs = sm.step(queued(), sm.QueueStatus(4, 300.0), 5.0)
    assert (call.position, call.ewt_s, outs) == (4, 300.0, [])


def test_resync_hangs_up_a_caller_left_in_farewell() -> None:
    call, _ = sm.step(queued(), dtmf("1"), 5.0)
    call, outs = sm.step(call, sm.Resync({CALL: "Up"}), 6.0)
    assert outs == [sm.Hangup(CALL)]


def test_resync_replays_the_callback_offer_and_the_voicemail_greeting() -> None:
    call, _ = sm.step(queued(CONFIG), sm.CallbackOfferRequest(), 5.0)
    call, outs = sm.step(call, sm.Resync({CALL: "Up"}), 6.0)
    assert call.state is sm.CallState.CALLBACK_OFFER and isinstance(outs[0], sm.Play)
    call, _ = sm.step(queued(), sm.VoicemailRequest(), 5.0)
    call, outs = sm.step(call, sm.Resync({CALL: "Up"}), 6.0)
    assert outs == [sm.Play(CALL, ("sound:vm-intro",), call.playback_id or "")]
    call, _ = sm.step(call, played(call.playback_id or ""), 9.0)
    assert sm.step(call, sm.Resync({CALL: "Up"}), 10.0) == (call, [])  # recording goes on
