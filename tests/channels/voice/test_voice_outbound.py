"""Click-to-call against a real Asterisk 22: sipp phones for the agent and the customer.

The customer's "trunk" is the testbed's ``caller`` endpoint (``PJSIP/{number}@caller``), so a
sipp UAS on the caller port plays the customer's phone. Agent phones are ``agent1``/``agent2``.
Failure paths (agent no answer, customer busy) run through the hub in
tests/hub/test_voice_click_to_call.py and every path of the state machine in
test_voice_outbound_units.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from channels.voice.ari import AriClient
from channels.voice.commands import RecordingReady
from channels.voice.dialer import Dialer, Recorded
from channels.voice.outbound import (
    AgentUp,
    CustomerUp,
    OutboundCall,
    OutboundEnded,
    OutNotice,
    OutState,
    customer_dial_string,
)
from tests.channels.voice.conftest import TcpProxy, end_unheard, heard_rms, running_channel
from tests.servers.asterisk import AsteriskTestbed, start_sipp, wav_rms

NUMBER = "+14155550199"
TRUNK = "PJSIP/{number}@caller"


class Notices:
    """Collects what the dialer reports, in order."""

    def __init__(self) -> None:
        self.items: list[OutNotice | Recorded] = []
        self.changed = asyncio.Event()

    async def __call__(self, call: OutboundCall, notice: OutNotice | Recorded) -> None:
        assert not isinstance(notice, RecordingReady)  # the dialer turns it into Recorded
        self.items.append(notice)
        self.changed.set()

    async def wait(self, kind: type, timeout: float = 15.0) -> OutNotice | Recorded:
        async with asyncio.timeout(timeout):
            while True:
                for item in self.items:
                    if isinstance(item, kind):
                        return item
                self.changed.clear()
                await self.changed.wait()


async def dial_customer(dialer: Dialer, notes: Notices) -> OutboundCall:
    """Click-to-call from agent1 to the test customer; returns once the customer answered."""
    call = await dialer.dial(agent_endpoint="PJSIP/agent1",
                             customer_endpoint=customer_dial_string(TRUNK, NUMBER),
                             number=NUMBER, report=notes)  # fmt: skip
    await notes.wait(CustomerUp)
    return call


async def test_agent_then_customer_answer_bridged_recorded_customer_hangs_up(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "300", "speech_pcap": str(speech["agent"])})
    customer = start_sipp(tb, "phone_hangup", tmp_path, port=tb.caller_port,
                          values={"ring_ms": "2500", "speech_pcap": str(speech["caller"]),
                                  "talk_ms": "4000"})
    async with running_channel(tb) as run:
        dialer = Dialer(run.channel)
        notes = Notices()
        t0 = time.monotonic()
        call = await dialer.dial(agent_endpoint="PJSIP/agent1",
                                 customer_endpoint=customer_dial_string(TRUNK, NUMBER),
                                 number=NUMBER, report=notes, customer_ring_timeout=10)
        assert call.state is OutState.AGENT_RINGING
        up = await notes.wait(AgentUp)
        assert isinstance(up, AgentUp) and up.agent_channel == call.agent_channel
        # the customer's phone rings 2.5 s: meanwhile the agent hears a ring tone, not silence
        ringback = await heard_rms(tb, call.agent_channel, tmp_path, seconds=0.8)
        answered = await notes.wait(CustomerUp)
        t_answer = time.monotonic() - t0
        live = dialer.call(call.id)
        assert live is not None and live.state is OutState.CONNECTED
        end = await notes.wait(OutboundEnded, timeout=20)
        assert isinstance(end, OutboundEnded)
        rec = await notes.wait(Recorded, timeout=20)
        assert isinstance(rec, Recorded)
        assert await asyncio.to_thread(customer.wait, 10) == 0, customer.errors()
        # the agent's phone got the BYE when the customer left
        assert await asyncio.to_thread(agent.wait, 10) == 0, agent.errors()
        async with asyncio.timeout(5):  # the worker lets go once the recording is delivered
            while dialer.calls():
                await asyncio.sleep(0.05)
    assert isinstance(answered, CustomerUp) and answered.customer_channel == call.customer_channel
    assert end.reason == "customer_hangup" and end.connected and 3.0 < end.talk_s < 8.0, end
    assert ringback > 0.01, f"the agent heard silence while the customer rang ({ringback})"
    assert 2.0 < t_answer < 8.0, t_answer
    path = tmp_path / "out.wav"
    path.write_bytes(rec.wav)
    assert rec.wav[:4] == b"RIFF" and wav_rms(path) > 0.01, "the recording is silent"
    kinds = [type(n).__name__ for n in notes.items]
    assert kinds == ["AgentUp", "CustomerUp", "OutboundEnded", "Recorded"], kinds



async def test_customer_hangs_up_while_ari_is_cut_the_call_still_ends(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """The hub cannot hear Asterisk when the customer hangs up; after the reconnect the dialer
    finds the customer's leg gone, ends the call and frees the agent's phone."""
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "100", "speech_pcap": str(speech["agent"])})
    customer = start_sipp(tb, "phone_hangup", tmp_path, port=tb.caller_port,
                          values={"ring_ms": "100", "speech_pcap": str(speech["caller"]),
                                  "talk_ms": "1500"})  # fmt: skip
    proxy = TcpProxy(tb.http_port)
    port = await proxy.start()
    try:
        async with running_channel(tb, ari_url=f"http://127.0.0.1:{port}/ari") as run:
            dialer = Dialer(run.channel)
            notes = Notices()
            await dial_customer(dialer, notes)
            proxy.block()  # the customer hangs up 1.5 s after answering: nobody hears it
            assert await asyncio.to_thread(customer.wait, 10) == 0, customer.errors()
            assert not any(isinstance(n, OutboundEnded) for n in notes.items)
            proxy.allow()
            end = await notes.wait(OutboundEnded, timeout=15)
            assert await asyncio.to_thread(agent.wait, 10) == 0, agent.errors()
            assert run.channel.connections >= 2
    finally:
        await proxy.close()
    assert isinstance(end, OutboundEnded)
    assert end.reason == "customer_hangup" and end.connected, end


async def test_recording_is_handed_over_when_its_finished_event_never_came(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    """As for inbound calls (test_voice_e2e.py): the call ends while the events socket is down,
    so the recording's RecordingFinished is certainly lost; after the reconnect the dialer's
    call asks ARI and still reports the recording, well before ``recording_wait_s``."""
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "100", "speech_pcap": str(speech["agent"])})
    customer = start_sipp(tb, "agent", tmp_path, port=tb.caller_port,
                          values={"ring_ms": "100", "speech_pcap": str(speech["caller"])})
    proxy = TcpProxy(tb.http_port)
    port = await proxy.start()
    direct = AriClient(tb.ari_url, tb.user, tb.password)
    try:
        async with running_channel(tb, ari_url=f"http://127.0.0.1:{port}/ari",
                                   recording_wait_s=30.0) as run:
            dialer = Dialer(run.channel)
            notes = Notices()
            call = await dial_customer(dialer, notes)
            await asyncio.sleep(1)  # some conversation to record
            proxy.block()
            await asyncio.sleep(0.3)
            # the call ends while nobody listens, the way the dialer ends one
            await end_unheard(direct, (call.customer_channel, call.agent_channel),
                              call.bridge_id, call.recording)
            t = time.monotonic()
            proxy.allow()
            end = await notes.wait(OutboundEnded, timeout=15)
            rec = await notes.wait(Recorded, timeout=10)
            handed_over_s = time.monotonic() - t
            assert await asyncio.to_thread(agent.wait, 10) == 0, agent.errors()
            assert await asyncio.to_thread(customer.wait, 10) == 0, customer.errors()
    finally:
        await direct.aclose()
        await proxy.close()
    assert isinstance(end, OutboundEnded) and end.connected, end
    assert isinstance(rec, Recorded) and rec.wav[:4] == b"RIFF"
    assert handed_over_s < 10.0  # not recording_wait_s (30 s)
    print(f"\nrecording handed over {handed_over_s*1000:.0f} ms after reconnecting")
