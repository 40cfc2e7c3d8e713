"""Supervisor listen / whisper / barge through ARI snoop channels, checked by what people hear.

A click-to-call connects agent1 and the "customer" (sipp phones); the supervisor's phone
(agent2's endpoint, a sipp phone that talks all the time) is rung by the monitor. What a party
hears is captured with a separate probe snoop and measured: in ``listen`` nobody hears the
supervisor, in ``whisper`` only the agent does, in ``barge`` the customer does too. The
supervisor hearing the call is checked with a sound played into the bridge.

A probe snoop on the agent's channel cannot see what is whispered into that same channel
(Asterisk feeds spies before it mixes whispers in), so "the agent hears it" is checked with an
echo phone (sipp ``-rtp_echo``): what it sends back is what it received.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest

from channels.voice.dialer import Dialer
from channels.voice.snoop import MonitorError, Monitors, MonitorSession
from tests.channels.voice.conftest import heard_rms, running_channel
from tests.channels.voice.test_voice_outbound import Notices, dial_customer
from tests.servers.asterisk import (
    SCENARIOS,
    AsteriskTestbed,
    Sipp,
    free_port,
    make_speech_pcap,
    require_tools,
    start_sipp,
    write_rtp_pcap,
)

ECHO_DRAIN_S = 0.5  # for a previous mode's audio still in flight to leave the line
SILENT = 0.003  # RMS of what Asterisk sends when nobody talks is 0; speech is above 0.01
SUPERVISOR_SPEECH = (
    "This is your supervisor speaking. I am listening to this call to help you. "
    "Please confirm the order number with the customer, then offer the express delivery. "
    "Remember to ask whether the billing address is still the same as last time. "
    "If the customer asks for a refund, tell them the refund takes five working days. "
    "Thank you, you are doing a great job, keep going and close the call politely."
)


@pytest.fixture(scope="module")
def pcaps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("snoop")
    return {
        "silence": write_rtp_pcap(b"\xff" * 8000 * 40, d / "silence.pcap"),
        "supervisor": make_speech_pcap(SUPERVISOR_SPEECH, d / "supervisor.pcap"),
    }


async def test_listen_whisper_barge_switch_and_stop(
    asterisk: AsteriskTestbed, pcaps: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "100", "speech_pcap": str(pcaps["silence"])})
    customer = start_sipp(tb, "agent", tmp_path, port=tb.caller_port, name="customer",
                          values={"ring_ms": "100", "speech_pcap": str(pcaps["silence"])})
    supervisor = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent2"],
                            name="supervisor",
                            values={"ring_ms": "200", "speech_pcap": str(pcaps["supervisor"])})
    ended: list[str] = []

    async def on_end(session: MonitorSession, reason: str) -> None:
        ended.append(reason)

    async with running_channel(tb) as run:
        dialer = Dialer(run.channel)
        notes = Notices()
        call = await dial_customer(dialer, notes)
        monitors = Monitors(run.channel)
        with pytest.raises(MonitorError) as bad:
            await monitors.start(call.agent_channel, "PJSIP/agent2", "shout", on_end)
        assert bad.value.code == "bad_mode"
        s = await monitors.start(call.agent_channel, "PJSIP/agent2", "listen", on_end)
        a, c = call.agent_channel, call.customer_channel

        async def hears(channel: str) -> float:
            return await heard_rms(tb, channel, tmp_path, seconds=1.2)

        listen = {"agent": await hears(a), "customer": await hears(c)}
        pb = await run.channel.ari.play_bridge(call.bridge_id, ["sound:demo-congrats"])
        listen["supervisor"] = await hears(s.supervisor)
        await run.channel.ari.stop_playback(pb.id)

        await monitors.set_mode(s.id, "whisper")
        whisper = {"customer": await hears(c)}
        await monitors.set_mode(s.id, "barge")
        barge = {"customer": await hears(c)}

        await monitors.stop(s.id)
        # the supervisor's phone was hung up
        assert await asyncio.to_thread(supervisor.wait, 10) == 0, supervisor.errors()
        live = dialer.call(call.id)
        assert live is not None and live.state.value == "connected"  # the call goes on
        await dialer.hangup(call.id)
        for phone in (agent, customer):
            assert await asyncio.to_thread(phone.wait, 10) == 0, phone.errors()
        with pytest.raises(MonitorError):
            await monitors.set_mode(s.id, "listen")
    print(f"\nlisten {listen}\nwhisper {whisper}\nbarge {barge}")
    assert listen["agent"] < SILENT and listen["customer"] < SILENT, listen
    assert listen["supervisor"] > 0.01, listen  # hears the call
    assert whisper["customer"] < SILENT, whisper
    assert barge["customer"] > 0.01, barge
    assert ended == ["stopped"]


async def test_monitor_ends_when_the_call_ends(
    asterisk: AsteriskTestbed, pcaps: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    agent = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                       values={"ring_ms": "100", "speech_pcap": str(pcaps["silence"])})
    customer = start_sipp(tb, "phone_hangup", tmp_path, port=tb.caller_port,
                          values={"ring_ms": "100", "speech_pcap": str(pcaps["silence"]),
                                  "talk_ms": "3500"})  # fmt: skip
    supervisor = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent2"],
                            name="supervisor",
                            values={"ring_ms": "100", "speech_pcap": str(pcaps["silence"])})
    ended: list[str] = []

    async def on_end(session: MonitorSession, reason: str) -> None:
        ended.append(reason)

    async with running_channel(tb) as run:
        dialer = Dialer(run.channel)
        notes = Notices()
        call = await dial_customer(dialer, notes)
        monitors = Monitors(run.channel)
        s = await monitors.start(call.agent_channel, "PJSIP/agent2", "barge", on_end)
        # the customer hangs up, so the call ends and the supervisor is let go too
        # (waited for in threads: the event loop must keep running meanwhile)
        for phone in (customer, supervisor, agent):
            assert await asyncio.to_thread(phone.wait, 15) == 0, phone.errors()
        async with asyncio.timeout(5):  # the session's end is reported once it cleaned up
            while not ended:
                await asyncio.sleep(0.05)
        assert monitors.session(s.id) is None
    assert ended == ["call_ended"]


def start_echo_phone(tb: AsteriskTestbed, workdir: Path, port: int) -> Sipp:
    """A sipp phone that answers and sends back all the audio it receives (``-rtp_echo``)."""
    require_tools("sipp")
    xml = workdir / "echo.xml"
    xml.write_text((SCENARIOS / "phone_echo.xml").read_text().replace("@@ring_ms@@", "100"))
    cmd = ["sipp", "-sf", str(xml), "-i", "127.0.0.1", "-p", str(port),
           "-mp", str(free_port(socket.SOCK_DGRAM)), "-m", "1", "-nostdin", "-rtp_echo",
           "-trace_err", "-error_file", str(workdir / "echo-errors.log"),
           "-timeout", "90s", "-timeout_error"]
    log = open(workdir / "echo-screen.txt", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    phone = Sipp("echo", proc, workdir)
    tb.peers.append(phone)
    return phone


async def test_whisper_and_barge_reach_the_agent_listen_does_not(
    asterisk: AsteriskTestbed, pcaps: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    agent = start_echo_phone(tb, tmp_path, tb.agent_ports["agent1"])
    customer = start_sipp(tb, "agent", tmp_path, port=tb.caller_port, name="customer",
                          values={"ring_ms": "100", "speech_pcap": str(pcaps["silence"])})
    supervisor = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent2"],
                            name="supervisor",
                            values={"ring_ms": "100", "speech_pcap": str(pcaps["supervisor"])})

    async def on_end(session: MonitorSession, reason: str) -> None:
        pass

    async with running_channel(tb) as run:
        dialer = Dialer(run.channel)
        notes = Notices()
        call = await dial_customer(dialer, notes)
        monitors = Monitors(run.channel)
        s = await monitors.start(call.agent_channel, "PJSIP/agent2", "whisper", on_end)

        async def agent_heard() -> float:  # the echo phone says what it heard
            return await heard_rms(tb, call.agent_channel, tmp_path, seconds=1.2, spy="in")

        heard = {"whisper": await agent_heard()}
        await monitors.set_mode(s.id, "listen")
        # audio of the whisper still in flight (Asterisk's snoop buffers, the echo phone's
        # playback) must leave the line first: a CI run once measured its tail (RMS 0.012)
        await asyncio.sleep(ECHO_DRAIN_S)
        heard["listen"] = await agent_heard()
        await monitors.set_mode(s.id, "barge")
        heard["barge"] = await agent_heard()
        await dialer.hangup(call.id)  # the end of the call also ends the monitoring
        for phone in (agent, customer, supervisor):
            assert await asyncio.to_thread(phone.wait, 10) == 0, phone.errors()
    print(f"\nthe agent heard {heard}")
    assert heard["whisper"] > 0.01 and heard["barge"] > 0.01, heard
    assert heard["listen"] < SILENT, heard
