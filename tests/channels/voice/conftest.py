"""Fixtures for the voice tests: a real Asterisk 22 (chroot), speech audio, a recording sink."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from channels.base import ChannelError, Inbound, IngestReceipt
from channels.voice.ari import AriClient, AriNotFound
from channels.voice.call import Call
from channels.voice.channel import VoiceChannel, VoiceSettings
from channels.voice.events import StasisStart
from channels.voice.ivr import IvrConfig, Menu, MenuOption
from channels.voice.stream import Backoff, Connected, event_stream

_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:  # so `tests.servers.asterisk` imports under plain `pytest`
    sys.path.insert(0, str(_ROOT))

from tests.servers.asterisk import (  # noqa: E402
    AsteriskTestbed,
    asterisk_testbed,
    make_speech_pcap,
    wav_rms,
)

CALLER_SPEECH = "Hello, I would like to check the status of my order number four two seven."
AGENT_SPEECH = "Thank you for calling, this is the sales team, how can I help you today?"


@dataclass
class RecordingSink:
    """Stands in for the hub's ingest: keeps every item, dedupes by external_id like the hub."""

    items: list[Inbound] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        created = all(i.external_id != inbound.external_id for i in self.items)
        if created:
            self.items.append(inbound)
        self.changed.set()
        return IngestReceipt(f"i-{len(self.items)}", inbound.external_id, "contact", created)

    async def wait_for(self, pred: Callable[[Inbound], bool], timeout: float = 15.0) -> Inbound:
        async with asyncio.timeout(timeout):
            while True:
                for item in self.items:
                    if pred(item):
                        return item
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("speech")
    return {
        "caller": make_speech_pcap(CALLER_SPEECH, d / "caller.pcap"),
        "agent": make_speech_pcap(AGENT_SPEECH, d / "agent.pcap"),
    }


@pytest.fixture
def asterisk() -> Iterator[AsteriskTestbed]:
    """A fresh Asterisk per test (starts in about half a second)."""
    with asterisk_testbed() as tb:
        yield tb


def demo_menu() -> Menu:
    """Main menu: 1 sales, 2 support sub-menu (1 billing, 2 technical); prompts are core sounds."""
    support = Menu(
        name="support",
        prompts=("sound:if-correct-press", "sound:digits/1"),
        options={"1": MenuOption("billing", queue="billing"),
                 "2": MenuOption("technical", queue="technical")},
        fallback_queue="support",
        timeout_s=3.0,
    )
    return Menu(
        name="main",
        prompts=("sound:demo-congrats",),
        options={"1": MenuOption("sales", queue="sales"),
                 "2": MenuOption("support", submenu=support)},
        fallback_queue="general",
        timeout_s=3.0,
        max_tries=2,
    )


@dataclass
class Running:
    channel: VoiceChannel
    sink: RecordingSink
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_channel(tb: AsteriskTestbed, *, ari_url: str | None = None,
                          whisper: dict[str, tuple[str, ...]] | None = None,
                          **kw: object) -> AsyncIterator[Running]:
    """A VoiceChannel on ``tb`` (or on ``ari_url``, e.g. through a proxy) with a recording sink."""
    settings = VoiceSettings(
        ari_url=ari_url or tb.ari_url, user=tb.user, password=tb.password, app=tb.app,
        ivr=IvrConfig(menu=demo_menu(), default_queue="general", whisper=whisper or {}),
        ring_timeout=4,
        **kw,  # type: ignore[arg-type]
    )
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


async def adopted(run: Running, call_id: str) -> Call | None:
    """The call a restarted channel found in the app (None if it never did within 2 s)."""
    for _ in range(100):
        if (call := run.channel.call(call_id)) is not None:
            return call
        await asyncio.sleep(0.02)
    return None


async def end_unheard(direct: AriClient, legs: tuple[str, ...], bridge_id: str,
                      recording: str) -> None:
    """End a recorded call the way the channel would, through ``direct`` while the channel's
    own ARI link is cut, and wait until Asterisk has stored the recording: its
    RecordingFinished went nowhere, certainly."""
    for leg in legs:
        await direct.hangup(leg)
    with contextlib.suppress(AriNotFound):
        await direct.destroy_bridge(bridge_id)
    async with asyncio.timeout(5):
        while True:
            try:
                await direct.get_live_recording(recording)
            except AriNotFound:
                break
            await asyncio.sleep(0.05)
    assert (await direct.get_stored_recording(recording)).name == recording


async def heard_rms(tb: AsteriskTestbed, channel_id: str, workdir: Path,
                    seconds: float = 1.5, spy: str = "out") -> float:
    """RMS of what ``channel_id`` hears for a while, captured by an ARI snoop (spy=out) recording.

    This is how the tests check "the caller hears music on hold": real audio out of Asterisk
    (``spy="in"``: what the channel sends instead). The snoop channel goes to a separate
    ``probe`` app (its own direct ARI connection), so it works while the channel under test is
    disconnected and never shows up in its events.
    """
    tag = uuid.uuid4().hex[:8]
    ari = AriClient(tb.ari_url, tb.user, tb.password)
    stream = event_stream(tb.ari_url, "probe", tb.user, tb.password)
    try:
        first = await anext(stream)
        assert isinstance(first, Connected)
        snoop = await ari.snoop(channel_id, "probe", spy=spy, snoop_id=f"snoop-{tag}")
        async with asyncio.timeout(5):  # recording needs the snoop channel in the app
            async for item in stream:
                if isinstance(item, StasisStart) and item.channel.id == snoop.id:
                    break
        name = f"heard-{tag}"
        try:
            await ari.record(snoop.id, name, fmt="wav")
            await asyncio.sleep(seconds)
            await ari.stop_recording(name)
        finally:
            with contextlib.suppress(ChannelError):
                await ari.hangup(snoop.id)
        path = workdir / f"{name}.wav"
        path.write_bytes(await ari.fetch_recording_file(name))
        await ari.delete_stored_recording(name)
        return wav_rms(path)
    finally:
        await stream.aclose()
        await ari.aclose()


class TcpProxy:
    """A TCP relay in front of Asterisk's HTTP port, so a test can cut the ARI connections.

    ``block()`` drops every open connection (the events WebSocket included) and refuses new ones
    until ``allow()``: a network outage between the hub and Asterisk, with Asterisk still up.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.blocked = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def block(self) -> None:
        self.blocked = True
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    def allow(self) -> None:
        self.blocked = False

    async def close(self) -> None:
        self.block()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
