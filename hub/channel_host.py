"""The channel host: configured channel instances become running adapters.

Each ``channels`` row (kind, name, address, config) is handed to the factory registered for its
kind (``hub/wiring/<kind>.py``), which builds the adapter with hub-backed state stores and says
what it needs from the web app: HTTP routes (mounted under ``/channels/<kind>/<name>/``) and
socket.io namespaces. The host then runs each adapter's ``run(sink)`` loop under supervision and
registers it with the delivery worker.

A channel whose configuration is invalid or whose factory fails is logged with the reason and
skipped; the others keep working. Nothing here knows any medium.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from starlette.routing import BaseRoute, Mount, Router

from channels.base import Channel, Sink
from hub.db.engine import SessionFactory
from hub.db.models import ChannelInstance
from hub.settings import Settings
from hub.state import StateStore

log = logging.getLogger(__name__)


@dataclass
class HostContext:
    """What a factory may use to build an adapter."""

    settings: Settings
    sessions: SessionFactory
    state: StateStore
    sink: Sink
    media: Any  # recorder.media.MediaStore
    sio: Any  # socketio.AsyncServer
    bus: Any = None  # hub.events.EventBus
    extras: dict[str, Any] = field(default_factory=dict)  # services.extras (dispatcher, ...)
    shared: dict[str, Any] = field(default_factory=dict)  # one adapter serving several rows


@dataclass
class Hosted:
    """A built adapter and what it needs mounted."""

    channel: Channel
    routes: list[BaseRoute] = field(default_factory=list)
    namespaces: list[Any] = field(default_factory=list)  # socketio.AsyncNamespace
    close: Callable[[], Awaitable[None]] | None = None
    run: bool = True  # False for adapters driven only by HTTP/socket events


class ChannelFactory(Protocol):
    def __call__(self, instance: ChannelInstance, ctx: HostContext) -> Awaitable[Hosted]: ...


FACTORIES: dict[str, ChannelFactory] = {}


def register(kind: str) -> Callable[[ChannelFactory], ChannelFactory]:
    def deco(factory: ChannelFactory) -> ChannelFactory:
        FACTORIES[kind] = factory
        return factory

    return deco


class ChannelHost:
    def __init__(
        self,
        ctx: HostContext,
        mount_point: Router,
        supervise: Callable[[str, Callable[[], Awaitable[None]]], Coroutine[Any, Any, None]],
    ):
        self.ctx = ctx
        self.mount_point = mount_point
        self._supervise = supervise
        self.channels: dict[str, Channel] = {}  # by instance id, plus first per kind by kind
        self.hosted: dict[str, Hosted] = {}
        self.failed: dict[str, str] = {}  # instance name -> why it is not running
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        async with self.ctx.sessions() as session:
            rows = list(
                (
                    await session.execute(
                        select(ChannelInstance)
                        .where(ChannelInstance.enabled.is_(True))
                        .order_by(ChannelInstance.name)
                    )
                ).scalars()
            )
        for row in rows:
            factory = FACTORIES.get(row.kind)
            if factory is None:
                self.failed[row.name] = f"no adapter for kind {row.kind!r} in this build"
                log.warning("channel %s not started: %s", row.name, self.failed[row.name])
                continue
            try:
                hosted = await factory(row, self.ctx)
            except Exception as exc:  # one bad channel must not stop the others
                self.failed[row.name] = f"{type(exc).__name__}: {exc}"
                log.error(
                    "channel %s (%s) not started: %s", row.name, row.kind, self.failed[row.name]
                )
                continue
            self._install(row, hosted)

    def _install(self, row: ChannelInstance, hosted: Hosted) -> None:
        self.hosted[row.id] = hosted
        self.channels[row.id] = hosted.channel
        self.channels.setdefault(row.kind, hosted.channel)
        if hosted.routes:
            self.mount_point.routes.append(Mount(f"/{row.kind}/{row.name}", routes=hosted.routes))
        for ns in hosted.namespaces:
            self.ctx.sio.register_namespace(ns)
        if hosted.run:
            task = asyncio.create_task(
                self._supervise(f"channel {row.name}", lambda: hosted.channel.run(self.ctx.sink))
            )
            self._tasks.append(task)
        log.info("channel %s (%s, %s) started", row.name, row.kind, row.address)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for hosted in self.hosted.values():
            if hosted.close is not None:
                try:
                    await hosted.close()
                except Exception:
                    log.exception("closing a channel failed")

    def status(self) -> dict[str, Any]:
        return {
            "running": sorted(k for k in self.channels if k.startswith("ch_")),
            "failed": dict(self.failed),
        }
