"""``create_app(settings)``: Starlette and python-socketio served as one ASGI app.

The lifespan is the composition root: it builds the engine, session factory, event bus, media
store, ingest, realtime namespace and background loops once, stores them on ``app.state`` and
supervises the loops (a crashed loop is logged and restarted, never silently gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

import hub.wiring  # noqa: F401  (registers the channel factories)
from channels.base import Channel
from hub import visitor_media, web
from hub.actions.batch_writer import shared_writer
from hub.actions.ingest import Ingestor
from hub.api import attachments as attachments_api
from hub.api import auth_routes, contacts, conversations, directory, offers, sms, system
from hub.api import call_monitor as call_monitor_api
from hub.api import call_transfers as call_transfers_api
from hub.api import calls as calls_api
from hub.api import canned as canned_api
from hub.api import media as media_api
from hub.api import qa as qa_api
from hub.api import search as search_api
from hub.api.framework import Api, Context
from hub.auth.ratelimit import SlidingWindowLimiter
from hub.channel_host import ChannelHost, HostContext
from hub.db.engine import make_engine, make_session_factory
from hub.delivery import DeliveryWorker
from hub.dispatch import Dispatcher
from hub.events import EventBus
from hub.gc_policy import tune_for_serving
from hub.metrics import Metrics
from hub.realtime import AgentNamespace, HubManager, HubPacket
from hub.search.service import SearchService
from hub.services import Services
from hub.settings import Settings
from hub.socket_rooms import IndexedRedisManager, redis_channel
from hub.state import StateStore
from hub.transcription import TranscriptionService
from recorder.media import MediaStore

log = logging.getLogger(__name__)

VERSION = "0.1.0"
API_MODULES: tuple[Api, ...] = (
    system.api,
    auth_routes.api,
    conversations.api,
    contacts.api,
    directory.api,
    offers.api,
    sms.api,
    search_api.api,
    media_api.api,
    calls_api.api,
    call_monitor_api.api,
    call_transfers_api.api,
    qa_api.api,
    canned_api.api,
    attachments_api.api,
)


def all_endpoints() -> list[Any]:
    return [ep for module in API_MODULES for ep in module.endpoints]


def openapi_document() -> dict[str, Any]:
    merged = Api()
    merged.endpoints = all_endpoints()
    return merged.openapi("contacthub", VERSION)


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def supervise(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop forever, restarting it (with a pause) if it crashes."""
    while True:
        try:
            await factory()
            log.warning("loop %s returned; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("loop %s crashed; restarting in 1 s", name)
        await asyncio.sleep(1.0)


class _Metered:
    """ASGI middleware counting requests by route template (never by raw path: no IDs/PII)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            m = self.metrics()
            if m is not None:
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                m.http_requests.labels(scope["method"], path, str(status["code"])).inc()
                m.http_latency.labels(scope["method"], path).observe(time.perf_counter() - start)


class HubApp:
    """The ASGI app, plus access to the services its lifespan built (for the CLI and tests)."""

    def __init__(
        self,
        inner: ASGIApp,
        holder: dict[str, Services],
        sio: socketio.AsyncServer,
        starlette: Starlette,
    ):
        self._inner = inner
        self._holder = holder
        self.sio = sio
        self.starlette = starlette

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Run the lifespan without a server (benchmarks and scripts)."""
        return self.starlette.router.lifespan_context(self.starlette)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._inner(scope, receive, send)

    @property
    def services(self) -> Services:
        """Available once the lifespan started."""
        return self._holder["services"]


def create_app(settings: Settings, *, channels: dict[str, Channel] | None = None) -> HubApp:
    """Build the ASGI app. ``channels`` lets tests and the CLI plug in running adapters."""
    sio = socketio.AsyncServer(
        async_mode="asgi",
        # any origin: the visitor widget runs on customers' sites; /agent checks the origin of
        # cookie-authenticated sockets itself (hub.realtime)
        cors_allowed_origins="*",
        client_manager=(
            IndexedRedisManager(
                settings.redis_url, channel=redis_channel(settings.effective_database_url)
            )
            if settings.redis_url
            else HubManager()
        ),
        max_http_buffer_size=max(settings.max_body_bytes, 8 * 1024 * 1024),  # widget files
        logger=False,
        engineio_logger=False,
        serializer=HubPacket,  # the library's packet with a cheaper binary check
    )
    holder: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(settings)
        sessions = make_session_factory(engine)
        bus = EventBus()
        media = MediaStore(settings.data_dir / "media")

        async def media_put(data: bytes, content_type: str) -> str:
            return (await media.put(data, content_type)).key

        metrics = Metrics()
        services = Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            bus=bus,
            ingestor=Ingestor(sessions, bus, media_put),
            media_put=media_put,
            login_limiter=SlidingWindowLimiter(settings.login_attempts_per_minute),
            metrics=metrics,
            extras={"media": media, "sio": sio},
        )
        app.state.services = services
        holder["services"] = services
        namespace = AgentNamespace(services)
        sio.register_namespace(namespace)
        bus.subscribe(namespace.forward)
        host = ChannelHost(
            HostContext(
                settings,
                sessions,
                StateStore(sessions),
                services.ingestor,
                media,
                sio,
                bus=bus,
                extras=services.extras,
            ),
            channel_mount,
            supervise,
        )
        host.channels.update(channels or {})
        services.extras["channel_host"] = host
        if settings.run_channels:  # off: an API-only process (channels run elsewhere)
            await host.start()
        delivery = DeliveryWorker(services, host.channels)
        bus.subscribe(delivery.on_event)
        services.extras["delivery"] = delivery
        tasks = [
            asyncio.create_task(supervise("delivery", delivery.run)),
            # rules and channels reloaded off the ingest path (see Ingestor.refresh_catalog)
            asyncio.create_task(supervise("routing catalog", services.ingestor.refresh_catalog)),
        ]
        if settings.dispatcher:  # exactly one process of a deployment may route
            dispatcher = Dispatcher(services)
            services.extras["dispatcher"] = dispatcher
            bus.subscribe(dispatcher.on_event)
            tasks.append(asyncio.create_task(supervise("dispatcher", dispatcher.run)))
        search = SearchService(
            settings, sessions, bus, media, writer=shared_writer(sessions, services.extras)
        )
        services.extras["search"] = search
        await search.start(supervise)
        transcription = TranscriptionService.create(
            settings.transcribe, sessions, bus, media, postgres=not settings.is_sqlite
        )
        if transcription is not None:  # recorded calls -> searchable transcripts
            services.extras["transcription"] = transcription
            transcription.start(supervise)
        gc_before = tune_for_serving()
        log.info(
            "contacthub %s ready on %s (%s)",
            VERSION,
            settings.effective_public_url,
            "sqlite" if settings.is_sqlite else "postgresql",
        )
        try:
            yield
        finally:
            # events posted by acknowledged chat messages reach the agents and the router first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bus.drain(), timeout=2.0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await search.stop()
            if transcription is not None:
                await transcription.stop()
            await host.stop()
            await engine.dispose()
            gc.set_threshold(*gc_before)

    channel_mount = Router(routes=[])  # filled by the channel host at startup
    routes: list[BaseRoute] = [
        Route("/api/openapi.json", _openapi, methods=["GET"]),
        Mount("/channels", app=channel_mount),
    ]
    for module in API_MODULES:
        routes += module.routes()
    routes += visitor_media.routes()  # visitors' chat files, before the /widget static mount
    routes += web.routes()  # the inbox and the visitor widget
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.add_exception_handler(404, _not_found)
    starlette.add_exception_handler(405, _method_not_allowed)
    starlette.add_exception_handler(Exception, _internal_error)
    metered = _Metered(starlette, lambda: holder["services"].metrics if holder else None)
    asgi: ASGIApp = socketio.ASGIApp(sio, other_asgi_app=metered, socketio_path="socket.io")
    return HubApp(asgi, holder, sio, starlette)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"code": "not_found", "message": f"no route {request.url.path}", "data": {}},
        status_code=404,
    )


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {
            "code": "method_not_allowed",
            "message": f"{request.method} not allowed on {request.url.path}",
            "data": {},
        },
        status_code=405,
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"code": "internal_error", "message": "internal error", "data": {}}, status_code=500
    )


__all__ = ["Context", "create_app", "openapi_document"]
