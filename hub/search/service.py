"""The search subsystem as the lifespan runs it: index, drainer and retention loop.

Built once by ``create_app``'s lifespan. If the index cannot be opened (tantivy directory
locked by another hub process, Meilisearch unreachable) the hub still runs: search answers 503
with the reason, the outbox keeps every update, and the log says what to do.

An embedded index written by an older schema version (an upgrade changed what is indexed) is
rebuilt by the hub itself, because the database is the source of truth: the old directory is
moved aside, a fresh index is filled from the interactions table in the background (search
answers 503 "rebuilding" meanwhile, the outbox keeps new updates), then the indexer starts and
the old directory is deleted. Nobody has to stop the hub and run ``contacthub reindex``.

With ``HUB_SEARCH_WORKER`` the embedded index is written by the index worker process
(:mod:`hub.search.index_worker_supervisor`) and only read here; by default, and with
Meilisearch, the :class:`~hub.search.indexer.Indexer` runs in this process.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hub.actions.batch_writer import BatchWriter, writer_for
from hub.db.engine import SessionFactory
from hub.events import EventBus
from hub.search.backend import backend_name, index_dir, open_index, uses_worker
from hub.search.index_worker_supervisor import IndexWorkerSupervisor
from hub.search.indexer import Indexer, delete_drained
from hub.search.maintenance import apply_retention, reindex
from hub.settings import Settings
from recorder.media import MediaStore
from recorder.search import IndexUnavailableError, SchemaMismatchError, SearchIndex, TantivyIndex

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
        writer: BatchWriter | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer  # SQLite: the hub's shared writer, for the outbox deletes
        self.sessions = sessions
        self.bus = bus
        self.media = media
        self.retention_interval_s = retention_interval_s
        self.poll_s = poll_s
        self.index: SearchIndex | None = None
        self.indexer: Indexer | None = None  # in this process (Meilisearch, or no worker)
        self.worker: IndexWorkerSupervisor | None = None  # the embedded index's writer process
        self._serving: SearchIndex | None = None  # the index while the worker cannot write
        self.unavailable_reason = "search is starting"
        self._rebuilding: SearchIndex | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, supervise: Supervise) -> None:
        try:
            self.index = await open_index(self.settings, writer=not uses_worker(self.settings))
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
            if self.settings.meili_url:
                self.unavailable_reason = exc.message
                log.error("search disabled: %s. Run `contacthub reindex`.", exc.message)
            else:
                self.unavailable_reason = "search index is being rebuilt"
                self._tasks.append(asyncio.create_task(self._rebuild(exc.message, supervise)))
        else:
            self._start_indexer(self.index, supervise)
        self._tasks.append(asyncio.create_task(supervise("retention", self._retention_loop)))

    def _start_indexer(self, index: SearchIndex, supervise: Supervise) -> None:
        if isinstance(index, TantivyIndex) and index.read_only:
            self.worker = IndexWorkerSupervisor(
                self.settings, index, self._worker_state, self._delete_drained
            )
            self.bus.subscribe(self.worker.on_event)
            self._tasks.append(asyncio.create_task(supervise("search-worker", self.worker.run)))
            log.info("search: tantivy index ready (written by the index worker process)")
            return
        self.indexer = Indexer(self.sessions, index, poll_s=self.poll_s, writer=self.writer)
        self.bus.subscribe(self.indexer.on_event)
        self._tasks.append(asyncio.create_task(supervise("search-indexer", self.indexer.run)))
        log.info("search: %s index ready", backend_name(self.settings))

    async def _delete_drained(self, ids: list[int]) -> None:
        if self.writer is None:
            self.writer = writer_for(self.sessions)
        await delete_drained(self.writer, ids)

    def _worker_state(self, problem: str | None) -> None:
        """The worker could not take the index writer (``problem``), or now has it (None)."""
        if problem is None:
            if self.index is None and self._serving is not None:
                self.index, self._serving = self._serving, None
                log.info("search: available again")
            return
        if self.index is not None:
            self._serving, self.index = self.index, None
        self.unavailable_reason = problem
        log.error(
            "search disabled in this process: %s. With the embedded index only one hub "
            "process may own %s; run several processes with HUB_MEILI_URL. Index updates "
            "wait in the outbox.",
            problem,
            index_dir(self.settings),
        )

    def _wake(self) -> None:
        for drainer in (self.indexer, self.worker):
            if drainer is not None:
                drainer.wake()

    async def _rebuild(self, why: str, supervise: Supervise) -> None:
        """Move the outdated embedded index aside and fill a new one from the database."""
        path = index_dir(self.settings)
        aside = path.with_name(f"{path.name}.outdated-{int(time.time())}")
        log.warning("search: %s; rebuilding it from the database (old copy: %s)", why, aside)
        try:
            await asyncio.to_thread(path.rename, aside)
            index = await open_index(self.settings)
        except (OSError, IndexUnavailableError, SchemaMismatchError) as exc:
            self.unavailable_reason = f"search index rebuild failed: {exc}"
            log.error("search disabled: %s. Run `contacthub reindex` with the hub stopped.", exc)
            return
        self._rebuilding = index  # not searchable until it is complete
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            self.unavailable_reason = f"search index is being rebuilt ({done}/{total})"

        try:
            docs = await reindex(self.sessions, index, progress=progress)
        except Exception:  # the DB went away mid-rebuild: say so, keep the hub up
            self.unavailable_reason = "search index rebuild failed (see the log)"
            log.exception("search: rebuilding the index failed; run `contacthub reindex`")
            return
        log.info("search: index rebuilt with %d docs in %.1f s", docs,
                 time.monotonic() - started)  # fmt: skip
        if uses_worker(self.settings):  # hand the writer to the worker process
            await index.close()
            try:
                index = await open_index(self.settings, writer=False)
            except (OSError, IndexUnavailableError, SchemaMismatchError) as exc:
                self.unavailable_reason = f"search index rebuilt but not readable: {exc}"
                log.error("search disabled: %s", self.unavailable_reason)
                return
        self.index, self._rebuilding = index, None
        self._start_indexer(index, supervise)
        await asyncio.to_thread(shutil.rmtree, aside, True)

    async def _retention_loop(self) -> None:
        while True:
            report = await apply_retention(self.sessions, self.media)
            if report.interactions:
                self._wake()
            await asyncio.sleep(self.retention_interval_s)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for index in (self.index, self._rebuilding, self._serving):
            if index is not None:
                await index.close()
        self.index = self._rebuilding = self._serving = None
