"""The ARI client against a real Asterisk 22: REST calls, events, and the error mapping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import pytest

from channels.base import PermanentChannelError, TransientChannelError
from channels.voice import events as ev
from channels.voice.ari import AriClient, AriNotFound
from channels.voice.stream import Connected, event_stream
from tests.servers.asterisk import AsteriskTestbed, free_port, wav_rms

Stream = AsyncGenerator[ev.Event | Connected, None]


async def next_event(stream: Stream, pred: Callable[[ev.Event], bool],
                     timeout: float = 5.0) -> ev.Event:
    async with asyncio.timeout(timeout):
        async for item in stream:
            if isinstance(item, ev.Event) and pred(item):
                return item
    raise AssertionError("stream ended")


async def test_errors_map_onto_the_channel_error_tree(asterisk: AsteriskTestbed) -> None:
    tb = asterisk
    ari = AriClient(tb.ari_url, tb.user, tb.password)
    bad = AriClient(tb.ari_url, tb.user, "wrong")
    down = AriClient(f"http://127.0.0.1:{free_port()}/ari", tb.user, tb.password)
    try:
        info = await ari.asterisk_info()
        assert info["system"]["version"].startswith("22.")
        with pytest.raises(AriNotFound):
            await ari.hangup("no-such-channel")
        with pytest.raises(AriNotFound):
            await ari.get_stored_recording("no-such-recording")
        with pytest.raises(PermanentChannelError) as auth:
            await bad.asterisk_info()
        assert auth.value.code == "ari_auth"
        with pytest.raises(TransientChannelError) as refused:
            await down.asterisk_info()
        assert refused.value.code == "ari_unreachable"
        with pytest.raises(PermanentChannelError) as ws_auth:
            await anext(event_stream(tb.ari_url, tb.app, tb.user, "wrong"))
        assert ws_auth.value.code == "ari_auth"
    finally:
        for c in (ari, bad, down):
            await c.aclose()


async def test_channel_bridge_playback_and_recording_calls(
    asterisk: AsteriskTestbed, tmp_path: Path
) -> None:
    """A Local channel pair through the real dialplan exercises the REST surface we rely on."""
    tb = asterisk
    ari = AriClient(tb.ari_url, tb.user, tb.password)
    stream: Stream = event_stream(tb.ari_url, tb.app, tb.user, tb.password)
    try:
        assert isinstance(await anext(stream), Connected)
        outer = await ari.originate("Local/100@inbound", tb.app, app_args=("outer",),
                                    caller_id='"Ann" <+14155550123>')
        start = await next_event(stream, lambda e: isinstance(e, ev.StasisStart))
        assert isinstance(start, ev.StasisStart) and start.args == ("inbound", "100")
        inner = start.channel.id
        await ari.answer(inner)
        outer_start = await next_event(
            stream, lambda e: isinstance(e, ev.StasisStart) and e.channel.id == outer.id)
        assert isinstance(outer_start, ev.StasisStart) and outer_start.args == ("outer",)

        await ari.set_variable(inner, "CH_TEST", "42")
        assert await ari.get_variable(inner, "CH_TEST") == "42"
        assert inner in await ari.application_channel_ids(tb.app)

        pb = await ari.play(inner, ["sound:beep"], playback_id="pb-1")
        assert pb.id == "pb-1"
        done = await next_event(stream, lambda e: isinstance(e, ev.PlaybackFinished))
        assert isinstance(done, ev.PlaybackFinished) and done.playback.id == "pb-1"

        await ari.send_dtmf(outer.id, "7")  # travels through the Local pair to the inner half
        digit = await next_event(stream, lambda e: isinstance(e, ev.ChannelDtmfReceived))
        assert isinstance(digit, ev.ChannelDtmfReceived) and digit.digit == "7"

        bridge = await ari.create_bridge("b-test")
        await ari.add_channel(bridge.id, [inner])
        await next_event(stream, lambda e: isinstance(e, ev.ChannelEnteredBridge))
        assert (await ari.get_bridge("b-test")).channels == (inner,)
        await ari.start_moh(outer.id)
        rec = await ari.record_bridge("b-test", "rec-test")
        assert rec.name == "rec-test"
        await asyncio.sleep(1.5)
        await ari.stop_recording("rec-test")
        await next_event(stream, lambda e: isinstance(e, ev.RecordingFinished))
        await ari.stop_moh(outer.id)

        copy = await ari.copy_stored_recording("rec-test", "rec-copy")
        assert copy.name == "rec-copy" and copy.format == "wav"
        wav = tmp_path / "rec.wav"
        wav.write_bytes(await ari.fetch_recording_file("rec-copy"))
        assert wav_rms(wav) > 0.001  # the outer half's MOH, heard in the bridge
        for name in ("rec-test", "rec-copy"):
            await ari.delete_stored_recording(name)
        with pytest.raises(AriNotFound):
            await ari.fetch_recording_file("rec-copy")

        await ari.hold(inner)  # an indication only: accepted, no event for an ARI-held channel
        await ari.unhold(inner)
        with pytest.raises(AriNotFound):
            await ari.hold("no-such-channel")

        await ari.destroy_bridge("b-test")
        await ari.hangup(outer.id)
        gone = await next_event(stream, lambda e: isinstance(e, ev.ChannelDestroyed))
        assert isinstance(gone, ev.ChannelDestroyed)
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()
        await ari.aclose()
