"""Fixtures for the SMS channel tests: a recording sink, channels, a real Kannel, uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from channels.base import Inbound, IngestReceipt, TransientChannelError

_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:  # so `tests.servers.kannel` imports under plain `pytest`
    sys.path.insert(0, str(_ROOT))

from tests.servers.kannel import KannelTestbed, free_port  # noqa: E402


@dataclass
class RecordingSink:
    """Stands in for the hub's ingest: dedupes by external_id like the real one must."""

    calls: list[Inbound] = field(default_factory=list)
    stored: dict[str, Inbound] = field(default_factory=dict)
    fail_next: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        self.calls.append(inbound)
        self.arrived.set()
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientChannelError("database is busy (test)")
        created = inbound.external_id not in self.stored
        self.stored.setdefault(inbound.external_id, inbound)
        return IngestReceipt(
            interaction_id=f"i-{len(self.stored)}",
            conversation_id="c-1",
            contact_id=f"contact:{inbound.sender.value}",
            created=created,
        )

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Inbound]:
        """Wait until ``count`` items are stored."""
        async with asyncio.timeout(timeout):
            while len(self.stored) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return list(self.stored.values())


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@dataclass
class HttpServer:
    """A Starlette app served by uvicorn on a free 127.0.0.1 port inside the test's loop."""

    port: int
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve(app: Starlette, port: int | None = None) -> AsyncIterator[HttpServer]:
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    try:
        yield HttpServer(port, server, task)
    finally:
        server.should_exit = True
        await task


def mounted(prefix: str, routes: Sequence[BaseRoute]) -> Starlette:
    """The app the way the hub mounts the channel's routes."""
    return Starlette(routes=[Mount(prefix, routes=routes)])


@pytest.fixture
async def kannel_factory(tmp_path: Path) -> AsyncIterator[list[KannelTestbed]]:
    """Started testbeds are stopped at teardown; append to the list after ``start()``."""
    started: list[KannelTestbed] = []
    yield started
    for testbed in started:
        await testbed.stop()
