"""The hub's side of the search index worker: start it, wake it, follow its commits.

The worker (:mod:`hub.search.index_worker`) owns the embedded index's writer and drains the
outbox; the hub holds the same directory open read-only and refreshes it on each
``committed`` line, so a search right after that line sees the batch (the "searchable within
1 s of the DB commit" promise holds as before: 0.25 s debounce, then read, index, commit).

Wakes are coalesced to one byte per event-loop turn however many interactions a group-commit
batch announced. A worker that dies is restarted with a growing pause (1 s up to 30 s; reset
after a minute of good running); it replays whatever the outbox still holds, so nothing is lost
or indexed twice. Meanwhile searches keep answering from the last refreshed view. Only a worker
that cannot get the writer (another hub process owns this data directory's index) makes search
unavailable here, because this process's view would then never move; the supervisor keeps
trying, in case that owner goes away.

The worker runs the hub's own code (the directory holding the ``hub`` package goes first on its
``PYTHONPATH``) with the hub's database and data directory, whatever this process's environment
says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import hub
from hub.events import Event
from hub.search.index_worker import DELETED, EXIT_LOCKED, WAKE
from hub.search.indexer import WAKE_EVENTS
from hub.settings import Settings, process_environment
from recorder.search import IndexUnavailableError, TantivyIndex
from recorder.search.tantivy_keys import KeySpread, from_wire

log = logging.getLogger(__name__)

RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0  # a worker that ran this long restarts quickly again if it dies
STOP_WAIT_S = 10.0  # a worker mid-commit gets this long to finish before it is killed
REFRESH_TRIES = 3
LINE_LIMIT = 1 << 20  # the longest protocol line (a key spread: ~120 buckets a year)

StateListener = Callable[[str | None], None]  # None: search works; else why it does not
DeleteDrained = Callable[[list[int]], Awaitable[None]]


class IndexWorkerSupervisor:
    """Runs :mod:`hub.search.index_worker` for one read-only :class:`TantivyIndex`."""

    def __init__(
        self,
        settings: Settings,
        index: TantivyIndex,
        on_state: StateListener,
        delete_drained: DeleteDrained,
    ) -> None:
        """``delete_drained``: deletes the SQLite outbox rows the worker committed, on the
        hub's own writer (see :mod:`hub.search.index_worker`, the ``delete`` message)."""
        self._settings = settings
        self._index = index
        self._on_state = on_state
        self._delete_drained = delete_drained
        self._proc: asyncio.subprocess.Process | None = None
        self._wake_queued = False
        self.commits = 0  # committed batches this hub has seen (tests, diagnostics)
        self.starts = 0
        self.pid: int | None = None

    # ---- wakes ----------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """Bus listener: a new interaction was committed, the worker should drain soon."""
        if event.name in WAKE_EVENTS:
            self.wake()

    def wake(self) -> None:
        if self._wake_queued or self._proc is None:
            return  # a worker that is starting drains everything first anyway
        self._wake_queued = True
        asyncio.get_running_loop().call_soon(self._send_wake)

    def _send_wake(self) -> None:
        self._wake_queued = False
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(WAKE)  # if it died, run() sees the exit and starts another

    # ---- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a worker running until cancelled (then stop it and wait for it)."""
        pause = RESTART_MIN_S
        while True:
            started = time.monotonic()
            status = await self._run_once()
            if time.monotonic() - started > HEALTHY_AFTER_S:
                pause = RESTART_MIN_S
            if status == EXIT_LOCKED:
                pause = RESTART_MAX_S
            log.error(
                "search index worker exited with status %s; starting another in %.0f s "
                "(searches answer from the last committed state meanwhile)",
                status,
                pause,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_MAX_S)

    async def _run_once(self) -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub.search.index_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=worker_environment(self._settings),
            limit=LINE_LIMIT,
        )
        self._proc, self.pid = proc, proc.pid
        self.starts += 1
        try:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                await self._handle(line, proc)
            return await proc.wait()
        finally:
            self._proc = None
            await _stop(proc)

    async def _handle(self, line: bytes, proc: asyncio.subprocess.Process | None) -> None:
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            log.error("search index worker said something unreadable (%s): %.200r", exc, line)
            return
        if "committed" in message:
            try:
                keys = from_wire(message.get("keys"))
            except ValueError as exc:
                log.error("search index worker sent a bad key spread (%s); ignored", exc)
                keys = self._index.key_spread
            await self._refresh(keys)
            self.commits += 1
        elif "delete" in message:
            ids = message["delete"]
            if not (isinstance(ids, list) and all(type(i) is int for i in ids)):
                log.error("search index worker sent bad outbox ids: %.200r", line)
                return  # no answer: the worker waits, then goes on (the rows come back later)
            try:
                await self._delete_drained(ids)
            except Exception:  # the rows stay and are indexed again: harmless
                log.exception("search: deleting %d drained outbox rows failed", len(ids))
            if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(DELETED)
        elif "ready" in message:
            log.info("search index worker %s ready (%s docs)", self.pid, message["ready"])
            await self._refresh(self._index.key_spread)
            self._on_state(None)
        elif "error" in message:
            log.error("search index worker: %s", message["error"])
            self._on_state(f"search index worker failed: {message['error']}")
        else:
            log.error("search index worker sent an unknown message: %.200r", line)

    async def _refresh(self, spread: KeySpread | None) -> None:
        for attempt in range(REFRESH_TRIES):
            try:
                await self._index.refresh(spread)
                return
            except IndexUnavailableError as exc:  # e.g. files a merge removed while reading
                if attempt == REFRESH_TRIES - 1:
                    log.error("search: could not see the worker's commit (%s)", exc.message)
                    return
                await asyncio.sleep(0.05)


def worker_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with the hub's code first on the path and its own data
    directory, database and log level as the only ``HUB_*`` settings."""
    env = {k: v for k, v in process_environment().items() if not k.startswith("HUB_")}
    code = str(Path(hub.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code, env.get("PYTHONPATH")]))
    env["HUB_DATA_DIR"] = str(settings.data_dir.resolve())
    env["HUB_DATABASE_URL"] = settings.database_url
    env["HUB_LOG_LEVEL"] = settings.log_level
    return env


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Ask a worker to stop (close its stdin), and kill it if it does not in time."""
    if proc.returncode is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.shield(asyncio.wait_for(proc.wait(), STOP_WAIT_S))
    except TimeoutError:
        log.error("search index worker %s did not stop in %.0f s; killing it", proc.pid,
                  STOP_WAIT_S)  # fmt: skip
        proc.kill()
        await proc.wait()
