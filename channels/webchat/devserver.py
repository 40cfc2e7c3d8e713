"""A self-contained web-chat server without the hub: for widget development and the test suite.

:func:`build_app` composes what the hub composes in production, minus the DB: a python-socketio
``AsyncServer`` with the ``/widget`` namespace, ``socketio.ASGIApp`` in front of a Starlette app
that serves the built widget under ``/widget/`` (exactly what the hub serves) and any extra pages.
:class:`MemoryIngest` plays the hub's idempotent ingest: it records every ``Inbound``, stores a
repeated ``(channel_id, external_id)`` once and keeps one conversation per visitor.

Run ``python -m channels.webchat.devserver`` for a demo (it prints its URL) where every visitor
message is answered by an echo "agent".
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from channels.base import Inbound, IngestReceipt
from channels.webchat.config import SiteConfig
from channels.webchat.memory import (
    MemoryAvailability,
    MemoryHistory,
    MemorySites,
    MemoryVisitors,
    RecordingSignals,
)
from channels.webchat.namespace import WebchatChannel

WIDGET_DIST = Path(__file__).resolve().parents[2] / "widget" / "visitor" / "dist"


@dataclass
class MemoryIngest:
    """The hub's ingest contract in memory: dedupe on ``(channel_id, external_id)``."""

    inbounds: list[Inbound] = field(default_factory=list)
    receipts: dict[tuple[str, str], IngestReceipt] = field(default_factory=dict)
    conversations: dict[str, str] = field(default_factory=dict)
    arrived: asyncio.Queue[Inbound] = field(default_factory=asyncio.Queue)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        key = (inbound.channel_id, inbound.external_id)
        known = self.receipts.get(key)
        if known is not None:
            return IngestReceipt(
                known.interaction_id, known.conversation_id, known.contact_id, created=False
            )
        sender = str(inbound.sender)
        conversation = self.conversations.setdefault(sender, f"c{next(self._ids)}")
        receipt = IngestReceipt(f"i{next(self._ids)}", conversation, f"k:{sender}", created=True)
        self.receipts[key] = receipt
        self.inbounds.append(inbound)
        self.arrived.put_nowait(inbound)
        return receipt


def build_server(
    channel: WebchatChannel, *, max_upload_bytes: int = 8 * 1024 * 1024, ping_interval: float = 25
) -> socketio.AsyncServer:
    """An ``AsyncServer`` as the hub configures it for the widget.

    CORS is open at the engine level because the per-site origin allow-list is enforced by the
    namespace; the buffer size must exceed the attachment limit (base64 adds a third).
    """
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*",
        max_http_buffer_size=max_upload_bytes,
        ping_interval=ping_interval,
    )
    sio.register_namespace(channel)
    return sio


def build_app(
    channel: WebchatChannel,
    *,
    pages: dict[str, str] | None = None,
    widget_dir: Path = WIDGET_DIST,
    max_upload_bytes: int = 8 * 1024 * 1024,
    ping_interval: float = 25,
) -> tuple[Any, socketio.AsyncServer]:
    """Return ``(asgi_app, sio)``; ``pages`` maps a path to an HTML document to serve."""

    def page(html: str) -> Any:
        async def endpoint(request: Request) -> HTMLResponse:
            return HTMLResponse(html)

        return endpoint

    routes: list[BaseRoute] = [Route(path, page(html)) for path, html in (pages or {}).items()]
    routes.append(Mount("/widget", StaticFiles(directory=widget_dir), name="widget"))
    sio = build_server(channel, max_upload_bytes=max_upload_bytes, ping_interval=ping_interval)
    return socketio.ASGIApp(sio, other_asgi_app=Starlette(routes=routes)), sio


class LocalServer:
    """uvicorn serving ``app`` on 127.0.0.1 inside the current event loop; restartable on the
    same port (a hub restart, as the widget sees it)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.app, self.port = app, port
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._sock, self.port = sock, sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ws="websockets-sansio",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._sock is not None:
            self._sock.close()
        self._server = self._task = self._sock = None

    async def restart(self, downtime: float = 0.0) -> None:
        await self.stop()
        await asyncio.sleep(downtime)
        await self.start()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port in this event loop; yield its URL."""
    server = LocalServer(app)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@dataclass
class DevStack:
    """Everything a widget test or demo touches, wired like the hub wires it."""

    channel: WebchatChannel
    ingest: MemoryIngest
    sites: MemorySites
    visitors: MemoryVisitors
    history: MemoryHistory
    availability: MemoryAvailability
    signals: RecordingSignals
    sio: socketio.AsyncServer
    server: LocalServer

    @property
    def url(self) -> str:
        return self.server.url


@asynccontextmanager
async def dev_stack(
    *sites: SiteConfig,
    pages: dict[str, str] | None = None,
    ping_interval: float = 25,
    **channel_options: Any,
) -> AsyncIterator[DevStack]:
    """Start a real server with the ``/widget`` namespace on in-memory stores; stop it after."""
    directory, visitors, history = MemorySites(*sites), MemoryVisitors(), MemoryHistory()
    availability, signals = MemoryAvailability(), RecordingSignals()
    channel = WebchatChannel(
        sites=directory,
        visitors=visitors,
        history=history,
        availability=availability,
        signals=signals,
        **channel_options,
    )
    app, sio = build_app(channel, pages=pages, ping_interval=ping_interval)
    ingest = MemoryIngest()
    server = LocalServer(app)
    stack = DevStack(
        channel, ingest, directory, visitors, history, availability, signals, sio, server
    )
    runner = asyncio.create_task(channel.run(ingest))
    try:
        await server.start()
        yield stack
    finally:
        await server.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


DEMO_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>contacthub widget demo</title></head><body><h1>Widget demo</h1>
<script src="/widget/loader.js" data-site-key="demo" async></script></body></html>"""


async def _echo_agent(channel: WebchatChannel, ingest: MemoryIngest) -> None:
    from channels.base import Outbound

    while True:
        inbound = await ingest.arrived.get()
        receipt = ingest.receipts[(inbound.channel_id, inbound.external_id)]
        await channel.send(
            Outbound(
                channel=inbound.channel,
                channel_id=inbound.channel_id,
                conversation_id=receipt.conversation_id,
                to=inbound.sender,
                text=f"You said: {inbound.text}",
                idempotency_key=f"echo-{receipt.interaction_id}",
                author_name="Echo",
            )
        )


async def _main() -> None:  # pragma: no cover - manual demo
    async with dev_stack(SiteConfig("demo", name="Demo"), pages={"/": DEMO_PAGE}) as stack:
        print(f"widget demo on {stack.url}/", flush=True)
        await _echo_agent(stack.channel, stack.ingest)


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main())
