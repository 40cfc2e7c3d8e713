"""End to end against a real Asterisk 22 with real SIP calls: sipp is the caller and the agents.

The caller (sipp UAC) dials 100, presses 1 (RFC 4733 events from a pcap) and talks (espeak-ng
speech as RTP); our Stasis app answers, runs the IVR, queues the call with music on hold, and the
test (playing the hub) connects an agent phone (sipp UAS that auto-answers and talks too).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from channels.base import AddressKind, ChannelKind, InboundKind, PermanentChannelError
from channels.voice.ari import AriClient, AriNotFound
from channels.voice.call import CallState
from channels.voice.channel import AgentUnavailable, CallGone
from tests.channels.voice.conftest import TcpProxy, adopted, end_unheard, heard_rms, running_channel
from tests.servers.asterisk import AsteriskTestbed, dtmf_pcap, sox_stat, start_sipp, wav_rms

CALLER = "+14155550123"


def caller_values(speech: dict[str, Path], digit: str = "1", **extra: str) -> dict[str, str]:
    values = {
        "caller_number": CALLER,
        "dtmf_delay_ms": "1200",
        "dtmf_pcap": str(dtmf_pcap(digit)),
        "speech_pcap": str(speech["caller"]),
        "wait_bye_ms": "60000",
        "abandon_ms": "3000",
    }
    values.update(extra)
    return values


async def test_ivr_choice_agent_answers_recording_and_hangup(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "300", "speech_pcap": str(speech["agent"])})
    async with running_channel(tb) as run:
        t0 = time.monotonic()
        caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                            values=caller_values(speech), call_to="100")
        call_item = await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)
        t_queued = time.monotonic() - t0
        assert call_item.channel is ChannelKind.VOICE
        assert call_item.sender.kind is AddressKind.PHONE
        assert call_item.sender.value == CALLER
        assert call_item.metadata["digits"] == "1"
        assert call_item.metadata["ivr_path"] == ["sales"]
        assert call_item.metadata["queue"] == "sales"
        assert call_item.recipient == "100"
        call_id = call_item.external_id
        state = run.channel.call(call_id)
        assert state is not None and state.state is CallState.QUEUED
        # the external id is the Asterisk channel's unique id
        assert (await run.channel.ari.get_channel(call_id)).caller.number == CALLER
        # MOH fades in quietly; silence measures exactly 0.0
        assert await heard_rms(tb, call_id, tmp_path) > 0.001, "no MOH"

        t1 = time.monotonic()
        agent_channel = await run.channel.connect_agent(call_id, "PJSIP/agent1")
        t_bridged = time.monotonic() - t1
        bridge = await run.channel.ari.get_bridge(f"bridge-{call_id.replace('.', '-')}")
        assert set(bridge.channels) == {call_id, agent_channel}

        await asyncio.sleep(2)  # both sides talk into the recording
        await run.channel.pause_recording(call_id)  # e.g. while a card number is read out
        await asyncio.sleep(2)
        await run.channel.resume_recording(call_id)
        await asyncio.sleep(1.5)
        await run.channel.hangup(call_id)
        rec = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:recording")
        end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end")

    assert agent.wait(10) == 0, agent.errors()
    assert caller.wait(10) == 0, caller.errors()
    assert end.metadata["event"] == "ended"
    assert end.thread_refs == (call_id,)
    (wav,) = rec.attachments
    assert wav.content_type == "audio/wav" and wav.data[:4] == b"RIFF"
    path = tmp_path / "rec.wav"
    path.write_bytes(wav.data)
    rms = wav_rms(path)
    assert rms > 0.01, "the bridge recording is silent"
    length = sox_stat(path, "Length (seconds)")
    assert 2.5 < length < 4.8, length  # 5.5 s bridged, 2 s of it paused
    print(f"\ncall->queued {t_queued*1000:.0f} ms (incl. ~1.2 s IVR wait), "
          f"connect_agent {t_bridged*1000:.0f} ms (incl. 300 ms ring), "
          f"recording RMS {rms:.3f}, {length:.1f} s")


async def test_agent_no_answer_then_busy_then_next_agent_answers_hold_unhold(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    ag1 = start_sipp(tb, "agent_noanswer", tmp_path, port=tb.agent_ports["agent1"], values={})
    async with running_channel(tb, whisper={"sales": ("sound:queue-thankyou",)}) as run:
        caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                            values=caller_values(speech), call_to="100")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id

        t = time.monotonic()
        with pytest.raises(AgentUnavailable) as no_answer:
            await run.channel.connect_agent(call_id, "PJSIP/agent1", ring_timeout=2)
        assert no_answer.value.reason == "noanswer"
        assert 1.5 < time.monotonic() - t < 6
        assert ag1.wait(10) == 0, ag1.errors()  # the phone saw the CANCEL
        state = run.channel.call(call_id)
        assert state is not None and state.state is CallState.QUEUED
        assert await heard_rms(tb, call_id, tmp_path) > 0.001, "no MOH"

        busy = start_sipp(tb, "agent_busy", tmp_path, port=tb.agent_ports["agent2"], values={})
        with pytest.raises(AgentUnavailable) as rejected:
            await run.channel.connect_agent(call_id, "PJSIP/agent2")
        assert rejected.value.reason == "busy"
        assert busy.wait(10) == 0, busy.errors()

        ag2 = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent2"],
                         values={"ring_ms": "200", "speech_pcap": str(speech["agent"])})
        t = time.monotonic()
        agent_channel = await run.channel.connect_agent(call_id, "PJSIP/agent2")
        assert time.monotonic() - t > 0.9  # the agent heard the ~1 s whisper before the bridge
        bridge_id = f"bridge-{call_id.replace('.', '-')}"
        bridge = await run.channel.ari.get_bridge(bridge_id)
        assert set(bridge.channels) == {call_id, agent_channel}

        await run.channel.hold(call_id)  # caller out of the bridge, hearing MOH
        assert (await run.channel.ari.get_bridge(bridge_id)).channels == (agent_channel,)
        assert await heard_rms(tb, call_id, tmp_path, 1.0) > 0.001, "no MOH on hold"
        await run.channel.unhold(call_id)
        assert set((await run.channel.ari.get_bridge(bridge_id)).channels) == {
            call_id, agent_channel}
        with pytest.raises(PermanentChannelError):
            await run.channel.unhold(call_id)  # not on hold any more
        await run.channel.hangup(call_id)
        end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end")
        assert end.metadata["event"] == "ended"
    assert ag2.wait(10) == 0, ag2.errors()
    assert caller.wait(10) == 0, caller.errors()


async def test_caller_abandons_in_queue(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    async with running_channel(tb) as run:
        caller = start_sipp(tb, "caller_abandon", tmp_path, port=tb.caller_port,
                            values=caller_values(speech, digit="1", abandon_ms="2500"),
                            call_to="100")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end")
        assert caller.wait(10) == 0, caller.errors()
        assert end.metadata["event"] == "abandoned"
        assert end.metadata["reason"] == "caller_hangup"
        assert end.metadata["queue"] == "sales"
        assert 2.5 <= end.metadata["wait_s"] < 8
        assert end.sender.value == CALLER
        for _ in range(50):  # the worker forgets the call once it ended
            if run.channel.call(call_id) is None:
                break
            await asyncio.sleep(0.05)
        assert run.channel.call(call_id) is None
        with pytest.raises(CallGone):
            await run.channel.connect_agent(call_id, "PJSIP/agent1")
        assert not [i for i in run.sink.items if i.external_id.endswith(":recording")]


async def test_events_socket_dropped_caller_put_back_on_hold_music(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """ARI connection lost while a caller waits; meanwhile their music stops. On reconnect the
    channel reconciles: the caller hears MOH again and can still be connected to an agent."""
    tb = asterisk
    proxy = TcpProxy(tb.http_port)
    port = await proxy.start()
    direct = AriClient(tb.ari_url, tb.user, tb.password)
    try:
        async with running_channel(tb, ari_url=f"http://127.0.0.1:{port}/ari") as run:
            caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                                values=caller_values(speech), call_to="100")
            call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
            assert run.channel.connections == 1

            proxy.block()
            await asyncio.sleep(0.3)
            await direct.stop_moh(call_id)  # something silenced the caller while we were away
            assert await heard_rms(tb, call_id, tmp_path, 1.0) == 0.0

            t = time.monotonic()
            proxy.allow()
            async with asyncio.timeout(10):
                while run.channel.connections < 2:
                    await asyncio.sleep(0.05)
            reconnect_s = time.monotonic() - t
            await asyncio.sleep(0.3)
            assert await heard_rms(tb, call_id, tmp_path) > 0.001, "silence"
            state = run.channel.call(call_id)
            assert state is not None and state.state is CallState.QUEUED
            assert len([i for i in run.sink.items if i.kind is InboundKind.CALL]) == 1

            agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                               values={"ring_ms": "200", "speech_pcap": str(speech["agent"])})
            await run.channel.connect_agent(call_id, "PJSIP/agent1")
            await run.channel.hangup(call_id)
            await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end")
        assert agent.wait(10) == 0, agent.errors()
        assert caller.wait(10) == 0, caller.errors()
        print(f"\nreconnected and reconciled {reconnect_s*1000:.0f} ms after the network came back")
    finally:
        await direct.aclose()
        await proxy.close()


async def test_recording_is_handed_over_when_its_finished_event_never_came(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """A recording's RecordingFinished can be lost: a bridge recording's events reach the app
    through the bridge, so one that finishes after the bridge was destroyed goes nowhere (a race
    at every call's end), and Asterisk drops every event while the events socket is down. Here the
    call ends while the socket is down, so the loss is certain; the ended call asks ARI about
    the recording and still hands it over."""
    tb = asterisk
    proxy = TcpProxy(tb.http_port)
    port = await proxy.start()
    direct = AriClient(tb.ari_url, tb.user, tb.password)
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "100", "speech_pcap": str(speech["agent"])})
    try:
        async with running_channel(tb, ari_url=f"http://127.0.0.1:{port}/ari",
                                   recording_wait_s=30.0) as run:
            caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                                values=caller_values(speech), call_to="100")
            call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
            agent_channel = await run.channel.connect_agent(call_id, "PJSIP/agent1")
            name = f"call-{call_id.replace('.', '-')}"
            await asyncio.sleep(1)  # some conversation to record

            proxy.block()
            await asyncio.sleep(0.3)
            # the call ends while nobody listens, the way the channel ends one
            await end_unheard(direct, (call_id, agent_channel),
                              f"bridge-{call_id.replace('.', '-')}", name)
            t = time.monotonic()
            proxy.allow()

            end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end")
            assert end.metadata["event"] == "ended" and end.metadata["reason"] == "lost"
            # well before recording_wait_s: the channel asked ARI instead of waiting it out
            rec = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:recording",
                                          timeout=10.0)
            handed_over_s = time.monotonic() - t
        assert rec.attachments[0].data[:4] == b"RIFF"
        with pytest.raises(AriNotFound):  # Asterisk's copy was deleted once handed over
            await direct.get_stored_recording(name)
        assert agent.wait(10) == 0, agent.errors()
        assert caller.wait(10) == 0, caller.errors()
        print(f"\nrecording handed over {handed_over_s*1000:.0f} ms after reconnecting")
    finally:
        await direct.aclose()
        await proxy.close()


async def test_hub_restart_adopts_waiting_caller(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """The channel process dies while a caller waits; a new one finds the caller in the Stasis
    app, reports the same call again (same external id, so the hub dedupes) and can route it."""
    tb = asterisk
    caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                        values=caller_values(speech), call_to="100")
    async with running_channel(tb) as first:
        call_id = (await first.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
    async with running_channel(tb) as second:
        again = await second.sink.wait_for(lambda i: i.kind is InboundKind.CALL)
        assert again.external_id == call_id
        assert again.sender.value == CALLER
        state = second.channel.call(call_id)
        assert state is not None and state.state is CallState.QUEUED
        assert await heard_rms(tb, call_id, tmp_path) > 0.001
        agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                           values={"ring_ms": "200", "speech_pcap": str(speech["agent"])})
        await second.channel.connect_agent(call_id, "PJSIP/agent1")
        await second.channel.hangup(call_id)
        await second.sink.wait_for(lambda i: i.external_id == f"{call_id}:recording")
    assert agent.wait(10) == 0, agent.errors()
    assert caller.wait(10) == 0, caller.errors()


async def test_caller_abandons_in_the_ivr_submenu(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """Pressing 2 enters the support sub-menu; hanging up there is an abandon with its IVR path,
    and never becomes routable work."""
    tb = asterisk
    async with running_channel(tb) as run:
        caller = start_sipp(tb, "caller_abandon", tmp_path, port=tb.caller_port,
                            values=caller_values(speech, digit="2", abandon_ms="1500"),
                            call_to="100")
        end = await run.sink.wait_for(lambda i: i.external_id.endswith(":end"))
        assert caller.wait(10) == 0, caller.errors()
    assert end.metadata["event"] == "abandoned"
    assert end.metadata["ivr_path"] == ["support"] and end.metadata["digits"] == "2"
    assert end.metadata["queue"] is None
    assert not [i for i in run.sink.items if i.kind is InboundKind.CALL]


async def test_hub_restart_keeps_a_connected_call_bridged(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """Restarting mid-conversation must not cut the call: the new channel adopts the bridge,
    can hang up both legs, and still hands over the recording."""
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "100", "speech_pcap": str(speech["agent"])})
    caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                        values=caller_values(speech), call_to="100")
    async with running_channel(tb) as first:
        call_id = (await first.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        agent_channel = await first.channel.connect_agent(call_id, "PJSIP/agent1")
    async with running_channel(tb) as second:
        state = await adopted(second, call_id)
        assert state is not None and state.state is CallState.CONNECTED
        assert state.agent_channel == agent_channel
        assert not second.sink.items  # nothing new to route
        bridge = await second.channel.ari.get_bridge(f"bridge-{call_id.replace('.', '-')}")
        assert set(bridge.channels) == {call_id, agent_channel}  # never left the bridge
        await asyncio.sleep(1)
        await second.channel.hangup(call_id)
        rec = await second.sink.wait_for(lambda i: i.external_id == f"{call_id}:recording")
        assert rec.attachments[0].data[:4] == b"RIFF"
    assert agent.wait(10) == 0, agent.errors()
    assert caller.wait(10) == 0, caller.errors()
