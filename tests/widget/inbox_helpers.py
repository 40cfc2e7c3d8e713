"""Fixtures and builders for the agent-inbox browser tests.

The hub runs for real (``create_app`` under uvicorn, SQLite in WAL mode, the real dispatcher and
socket.io ``/agent``) on a port chosen up front, so a test can stop it and start it again on the
same port and database, exactly what a browser sees during a hub restart.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import shutil
import socket
import struct
import wave
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from channels.base import (
    Address,
    AddressKind,
    Attachment,
    ChannelKind,
    Inbound,
    InboundKind,
    IngestReceipt,
    Outbound,
    SendResult,
    Sink,
)
from hub.app import HubApp, create_app
from hub.config import apply_config, parse_config
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.settings import Settings
from tests.conftest import Db
from tests.hub.server import PASSWORD, seed_users

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("CONTACTHUB_ARTIFACTS", "var/test-artifacts")) / "inbox"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

CENTER = """
skills: [english]
queues:
  - name: support
    required_skills: [{{skill: english, min_level: 1}}]
    offer_ttl_s: {ttl}
  - name: billing
    required_skills: [{{skill: english, min_level: 1}}]
agents:
  - email: agent@t.test
    name: Ava Agent
    skills: {{english: 3}}
    capacity: {{sms: 2, webchat: 3, email: 5}}
  - email: agent2@t.test
    name: Ben Backup
    skills: {{english: 3}}
    capacity: {{sms: 2, webchat: 3, email: 5}}
  - email: sup@t.test
    name: Sue Supervisor
    role: supervisor
    skills: {{english: 1}}
routing_rules:
  - name: chat and sms to support
    when: {{channel: [webchat, sms]}}
    queue: support
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(name="sqlite_db")
async def sqlite_db_fixture(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Db]:
    """A migrated SQLite database (the embedded default) for one test."""
    shutil.copy(sqlite_template, tmp_path / "contacthub.db")
    settings = Settings(data_dir=tmp_path, secret_key="test-secret")
    engine = make_engine(settings)
    await upgrade(engine)  # no-op on the migrated template; keeps the fixture self-sufficient
    try:
        yield Db(settings, engine, make_session_factory(engine), "sqlite")
    finally:
        await engine.dispose()


async def setup_center(db: Db, ttl: int = 30) -> dict[str, str]:
    """Queues, agents (with passwords) and routing rules; returns email -> agent id."""
    await apply_config(db.sessions, parse_config(CENTER.format(ttl=ttl)), env={})
    return await seed_users(db)


class StandInChat:
    """Stands in for the web-chat channel's send side (no visitor browser in these tests):
    records what the hub delivered and reports it sent, like the real adapter does."""

    kind = ChannelKind.WEBCHAT
    channel_id = "stand-in-webchat"

    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    async def run(self, sink: Sink) -> None:
        await asyncio.Event().wait()

    async def send(self, outbound: Outbound) -> SendResult:
        self.sent.append(outbound)
        return SendResult(external_id=f"chat-{len(self.sent)}", status="sent")


class HubServer:
    """The real hub app under uvicorn on a fixed port; ``stop()`` and ``start()`` again to
    restart it on the same port and database."""

    def __init__(self, settings: Settings, port: int, channels: dict[str, Any]) -> None:
        self.settings, self.port, self.channels = settings, port, channels
        self.url = f"http://127.0.0.1:{port}"
        self.app: HubApp | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.app = create_app(self.settings, channels=self.channels)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(250):
            if self._server.started:
                return
            if self._task.done():
                break
            await asyncio.sleep(0.02)
        raise AssertionError(f"the hub did not start on port {self.port}")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    async def ingest(self, inbound: Inbound) -> IngestReceipt:
        assert self.app is not None, "hub not running"
        return await self.app.services.ingestor(inbound)


@pytest.fixture(name="chat")
async def chat_fixture() -> StandInChat:
    return StandInChat()


@pytest.fixture(name="hub")
async def hub_fixture(sqlite_db: Db, chat: StandInChat) -> AsyncIterator[HubServer]:
    server = HubServer(sqlite_db.settings, free_port(), {"webchat": chat})
    await setup_center(sqlite_db)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(name="browser")
async def browser_fixture() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/servers/browser.sh`")
    expect.set_options(timeout=10_000)  # CI machines are shared and slow; failures stay clear
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()
            expect.set_options(timeout=5_000)  # Playwright's default, for other modules' tests


class Watched:
    """A page plus everything it said: console messages, dialogs, uncaught errors."""

    def __init__(self, page: Page, context: BrowserContext) -> None:
        self.page, self.context = page, context
        self.console: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()


async def open_inbox(
    browser: Browser,
    hub: HubServer,
    email: str,
    prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
) -> Watched:
    """A fresh browser profile that signs in through the login form (``prepare`` runs on the
    profile first, e.g. to route its requests)."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    if prepare is not None:
        await prepare(context)
    watched = Watched(await context.new_page(), context)
    page = watched.page
    await page.goto(f"{hub.url}/inbox/")
    await page.fill("#login-email", email)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "up")
    return watched


async def snap(page: Page, name: str) -> None:
    """Keep a screenshot of a key state as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png")


def chat_in(visitor: str, external_id: str, text: str, **extra: Any) -> Inbound:
    return Inbound(
        channel=ChannelKind.WEBCHAT,
        channel_id="stand-in-webchat",
        external_id=external_id,
        sender=Address(AddressKind.VISITOR, visitor),
        text=text,
        **extra,
    )


def sms_in(phone: str, external_id: str, text: str, **extra: Any) -> Inbound:
    return Inbound(
        channel=ChannelKind.SMS,
        channel_id="+14155550100",
        external_id=external_id,
        sender=Address(AddressKind.PHONE, phone),
        text=text,
        **extra,
    )


def email_in(sender: str, external_id: str, subject: str, html: str, **extra: Any) -> Inbound:
    return Inbound(
        channel=ChannelKind.EMAIL,
        channel_id="support@shop.test",
        external_id=external_id,
        sender=Address(AddressKind.EMAIL, sender),
        subject=subject,
        text="(HTML message)",
        html=html,
        **extra,
    )


def fax_in(phone: str, external_id: str, pages: list[bytes], ocr: str) -> Inbound:
    return Inbound(
        channel=ChannelKind.FAX,
        channel_id="+14155550177",
        external_id=external_id,
        sender=Address(AddressKind.PHONE, phone),
        text=ocr,
        attachments=tuple(
            Attachment(f"page-{i + 1}.png", "image/png", data) for i, data in enumerate(pages)
        ),
        metadata={"pages": len(pages)},
    )


def call_in(phone: str, external_id: str, recording: bytes, ivr: dict[str, str]) -> Inbound:
    return Inbound(
        channel=ChannelKind.VOICE,
        channel_id="+14155550100",
        external_id=external_id,
        sender=Address(AddressKind.PHONE, phone),
        kind=InboundKind.CALL,
        attachments=(Attachment("recording.wav", "audio/wav", recording),),
        metadata={"ivr": ivr, "duration_s": 1},
    )


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG the browser decodes (so naturalWidth proves the bytes arrived intact)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 16-bit tone, the shape of a telephony call recording."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()
