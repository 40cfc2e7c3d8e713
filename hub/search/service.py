"""The search subsystem as the lifespan runs it: index, drainer and retention loop.

Built once by ``create_app``'s lifespan. If the index cannot be opened (tantivy directory
locked by another hub process, Meilisearch unreachable, index of another schema version) the
hub still runs: search answers 503 with the reason, the outbox keeps every update, and the log
says what to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hub.db.engine import SessionFactory
from hub.events import EventBus
from hub.search.backend import backend_name, index_dir, open_index
from hub.search.indexer import Indexer
from hub.search.maintenance import apply_retention
from hub.settings import Settings
from recorder.media import MediaStore
from recorder.search import IndexUnavailableError, SchemaMismatchError, SearchIndex

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 24 * 3600.0
Supervise = Callable[[str, Callable[[], Awaitable[None]]], Coroutine[Any, Any, None]]


class SearchService:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        bus: EventBus,
        media: MediaStore | None,
        *,
        retention_interval_s: float = RETENTION_INTERVAL_S,
        poll_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.media = media
        self.retention_interval_s = retention_interval_s
        self.poll_s = poll_s
        self.index: SearchIndex | None = None
        self.indexer: Indexer | None = None
        self.unavailable_reason = "search is starting"
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, supervise: Supervise) -> None:
        try:
            self.index = await open_index(self.settings)
        except IndexUnavailableError as exc:
            self.unavailable_reason = exc.message
            log.error(
                "search disabled in this process: %s. With the embedded index only one hub "
                "process may own %s; run several processes with HUB_MEILI_URL. Index updates "
                "wait in the outbox.",
                exc.message,
                index_dir(self.settings),
            )
        except SchemaMismatchError as exc:
            self.unavailable_reason = exc.message
            log.error(
                "search disabled: %s. Stop the hub, delete %s and run `contacthub reindex`.",
                exc.message,
                index_dir(self.settings),
            )
        else:
            self.indexer = Indexer(self.sessions, self.index, poll_s=self.poll_s)
            self.bus.subscribe(self.indexer.on_event)
            self._tasks.append(asyncio.create_task(supervise("search-indexer", self.indexer.run)))
            log.info("search: %s index ready", backend_name(self.settings))
        self._tasks.append(asyncio.create_task(supervise("retention", self._retention_loop)))

    async def _retention_loop(self) -> None:
        while True:
            report = await apply_retention(self.sessions, self.media)
            if report.interactions and self.indexer is not None:
                self.indexer.wake()
            await asyncio.sleep(self.retention_interval_s)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.index is not None:
            await self.index.close()
            self.index = None
