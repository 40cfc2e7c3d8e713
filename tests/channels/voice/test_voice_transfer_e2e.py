"""Transfers against a real Asterisk 22 with real SIP phones (sipp): blind to a second agent,
attended (consult) completed and cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from channels.base import InboundKind
from channels.voice.call import CallState
from tests.channels.voice.conftest import adopted, running_channel
from tests.channels.voice.test_voice_e2e import caller_values
from tests.servers.asterisk import AsteriskTestbed, Sipp, start_sipp


async def ended(*peers: Sipp, timeout: float = 10) -> None:
    """Wait (without blocking the event loop) for sipp peers to finish their scenario."""
    for peer in peers:
        code = await asyncio.to_thread(peer.wait, timeout)
        assert code == 0, peer.errors()


def phone(tb: AsteriskTestbed, tmp_path: Path, speech: dict[str, Path], name: str) -> Sipp:
    return start_sipp(tb, "agent", tmp_path, port=tb.agent_ports[name],
                      values={"ring_ms": "200", "speech_pcap": str(speech["agent"])})


async def test_blind_transfer_to_a_second_agent_with_a_recording_each(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    ag1, ag2 = phone(tb, tmp_path, speech, "agent1"), phone(tb, tmp_path, speech, "agent2")
    async with running_channel(tb) as run:
        caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                            values=caller_values(speech), call_to="100")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        first = await run.channel.connect_agent(call_id, "PJSIP/agent1")
        await run.channel.requeue(call_id)
        await ended(ag1, timeout=10)  # the first agent's phone got its BYE
        call = run.channel.call(call_id)
        assert call is not None and call.state is CallState.QUEUED
        second = await run.channel.connect_agent(call_id, "PJSIP/agent2")
        assert second != first
        safe = call_id.replace(".", "-")
        bridge = await run.channel.ari.get_bridge(f"bridge-{safe}-2")
        assert set(bridge.channels) == {call_id, second}
        await run.channel.hangup(call_id)
        rec1 = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:recording")
        rec2 = await run.sink.wait_for(
            lambda i: i.external_id == f"{call_id}:recording:call-{safe}-2")
        await ended(ag2, caller, timeout=10)
    assert rec1.attachments[0].data[:4] == rec2.attachments[0].data[:4] == b"RIFF"


async def test_attended_transfer_complete_then_cancel(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    ag1, ag2 = phone(tb, tmp_path, speech, "agent1"), phone(tb, tmp_path, speech, "agent2")
    async with running_channel(tb) as run:
        caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                            values=caller_values(speech), call_to="100")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        first = await run.channel.connect_agent(call_id, "PJSIP/agent1")
        bridge_id = f"bridge-{call_id.replace('.', '-')}"

        # consult agent2, then cancel: back to the caller, agent2 hung up
        target = await run.channel.consult(call_id, "PJSIP/agent2")
        call = run.channel.call(call_id)
        assert call is not None and call.state is CallState.CONSULTED
        assert set((await run.channel.ari.get_bridge(bridge_id)).channels) == {first, target}
        await run.channel.cancel_transfer(call_id)
        await ended(ag2, timeout=10)
        assert set((await run.channel.ari.get_bridge(bridge_id)).channels) == {call_id, first}

        # consult agent2 again, then complete: caller with agent2, agent1 hung up
        ag2 = phone(tb, tmp_path, speech, "agent2")
        target = await run.channel.consult(call_id, "PJSIP/agent2")
        await run.channel.complete_transfer(call_id)
        await ended(ag1, timeout=10)
        assert set((await run.channel.ari.get_bridge(bridge_id)).channels) == {call_id, target}
        call = run.channel.call(call_id)
        assert call is not None and call.state is CallState.CONNECTED
        assert call.agent_channel == target
        await run.channel.hangup(call_id)
        await ended(ag2, caller, timeout=10)


async def test_hub_restart_after_a_blind_transfer_keeps_the_second_recording(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """The restarted channel adopts the call on its second agent's bridge and hands over that
    leg's recording (``call-<id>-2``), not a guess from the call id alone."""
    tb = asterisk
    ag1, ag2 = phone(tb, tmp_path, speech, "agent1"), phone(tb, tmp_path, speech, "agent2")
    caller = start_sipp(tb, "caller", tmp_path, port=tb.caller_port,
                        values=caller_values(speech), call_to="100")
    async with running_channel(tb) as first:
        call_id = (await first.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        await first.channel.connect_agent(call_id, "PJSIP/agent1")
        await first.channel.requeue(call_id)
        await ended(ag1, timeout=10)
        second_agent = await first.channel.connect_agent(call_id, "PJSIP/agent2")
    safe = call_id.replace(".", "-")
    async with running_channel(tb) as second:
        state = await adopted(second, call_id)
        assert state is not None and state.state is CallState.CONNECTED
        assert state.agent_channel == second_agent
        assert (state.bridge_id, state.recording) == (f"bridge-{safe}-2", f"call-{safe}-2")
        await asyncio.sleep(1)
        await second.channel.hangup(call_id)
        rec = await second.sink.wait_for(
            lambda i: i.external_id == f"{call_id}:recording:call-{safe}-2")
        assert rec.attachments[0].data[:4] == b"RIFF"
        await ended(ag2, caller, timeout=10)
