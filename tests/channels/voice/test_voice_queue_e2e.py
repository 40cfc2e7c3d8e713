"""The queue experience against a real Asterisk 22 with real SIP calls (sipp): announcements,
the caller pressing 1 for a callback, and voicemail with a WAV of what the caller said."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from channels.base import InboundKind
from channels.voice.call import CallState, QueueStatus
from channels.voice.channel import VoiceChannel, VoiceSettings
from channels.voice.ivr import IvrConfig
from channels.voice.stream import Backoff
from tests.channels.voice.conftest import RecordingSink, Running, heard_rms
from tests.channels.voice.test_voice_transfer_e2e import ended
from tests.servers.asterisk import (
    AsteriskTestbed,
    Sipp,
    dtmf_pcap,
    sox_stat,
    start_sipp,
    wav_rms,
)

CALLER = "+14155550123"


@contextlib.asynccontextmanager
async def queue_channel(tb: AsteriskTestbed, ivr: IvrConfig) -> AsyncIterator[Running]:
    """A VoiceChannel without IVR menu (callers go straight to the queue) on ``tb``."""
    settings = VoiceSettings(ari_url=tb.ari_url, user=tb.user, password=tb.password, app=tb.app,
                             ivr=ivr, ring_timeout=4)
    channel = VoiceChannel(settings, backoff=Backoff(initial=0.1, maximum=0.5))
    sink = RecordingSink()
    task = asyncio.create_task(channel.run(sink))
    try:
        async with asyncio.timeout(10):
            await channel.connected.wait()
        yield Running(channel, sink, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.aclose()


def caller(tb: AsteriskTestbed, tmp_path: Path, speech: dict[str, Path], digit: str,
           **values: str) -> Sipp:
    base = {"caller_number": CALLER, "dtmf_delay_ms": "1200", "dtmf_pcap": str(dtmf_pcap(digit)),
            "speech_pcap": str(speech["caller"]), "wait_bye_ms": "30000"}
    return start_sipp(tb, "caller", tmp_path, port=tb.caller_port, values={**base, **values},
                      call_to="100")


async def test_position_announcement_is_played_then_moh_resumes(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    asked: list[str] = []

    async def status(call_id: str) -> QueueStatus:
        asked.append(call_id)
        return QueueStatus(3, 200.0)

    ivr = IvrConfig(menu=None, default_queue="general", announce_s=1.0, announce_holdtime=True)
    async with queue_channel(tb, ivr) as run:
        run.channel.queue_status = status
        sipp = caller(tb, tmp_path, speech, "5")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        async with asyncio.timeout(20):  # ~1 s wait, then ~12 s of announcement
            while True:
                call = run.channel.call(call_id)
                assert call is not None
                if call.announcements >= 1 and call.announce_id is None:
                    break
                await asyncio.sleep(0.1)
        assert asked and asked[0] == call_id
        assert (call.position, call.ewt_s) == (3, 200.0)
        log = tb.log_tail(400)
        for sound in ("queue-thereare", "queue-callswaiting", "queue-holdtime", "queue-minutes"):
            assert sound in log, f"{sound} was not played:\n{log[-3000:]}"
        # MOH resumes right after (the next announcement is a second away: measure quickly)
        assert await heard_rms(tb, call_id, tmp_path, 0.6) > 0.001, "no MOH after announcing"
        await run.channel.hangup(call_id)
        await ended(sipp, timeout=10)


async def test_caller_presses_1_for_a_callback(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    ivr = IvrConfig(menu=None, default_queue="general", callback_digit="1")
    async with queue_channel(tb, ivr) as run:
        sipp = caller(tb, tmp_path, speech, "1")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end", 15)
        assert end.metadata["event"] == "ended" and end.metadata["reason"] == "callback"
        await ended(sipp, timeout=10)
        assert "vm-goodbye" in tb.log_tail(200)


async def test_voicemail_records_the_caller_into_a_wav(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    ivr = IvrConfig(menu=None, default_queue="general")
    async with queue_channel(tb, ivr) as run:
        sipp = start_sipp(tb, "caller_voicemail", tmp_path, port=tb.caller_port, values={
            "caller_number": CALLER, "dtmf_delay_ms": "300", "dtmf_pcap": str(dtmf_pcap("5")),
            "talk_delay_ms": "6800", "speech_pcap": str(speech["caller"]), "talk_ms": "5500",
        }, call_to="100")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        await run.channel.voicemail(call_id)
        call = run.channel.call(call_id)
        assert call is not None and call.state is CallState.VOICEMAIL
        vm = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:voicemail", 30)
        end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end", 5)
        assert end.metadata["reason"] == "voicemail" and end.metadata["event"] == "ended"
        await ended(sipp, timeout=10)
    assert vm.metadata["event"] == "voicemail" and vm.thread_refs == (call_id,)
    (wav,) = vm.attachments
    assert wav.content_type == "audio/wav" and wav.data[:4] == b"RIFF"
    path = tmp_path / "vm.wav"
    path.write_bytes(wav.data)
    assert wav_rms(path) > 0.01, "the voicemail is silent"
    assert sox_stat(path, "Length (seconds)") > 3.0


async def test_router_callback_offer_answered_with_1(
    asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    async with queue_channel(tb, IvrConfig(menu=None, default_queue="general")) as run:
        sipp = caller(tb, tmp_path, speech, "1", dtmf_delay_ms="2500")
        call_id = (await run.sink.wait_for(lambda i: i.kind is InboundKind.CALL)).external_id
        await run.channel.offer_callback(call_id)  # the router's overflow step
        end = await run.sink.wait_for(lambda i: i.external_id == f"{call_id}:end", 15)
        assert end.metadata["reason"] == "callback"
        await ended(sipp)
        assert "vm-tocallback" in tb.log_tail(200)
