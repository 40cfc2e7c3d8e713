"""The embedded search index's writer, run as a process of its own by the hub (opt-in).

Why a process: draining the outbox into tantivy is Python work (reading the changed rows,
building documents, turning them into tantivy documents and pair terms) that holds the GIL for
10-25 ms every half second under chat load, and in the hub's process that stalls the event loop
(bench/README.md, eighth round). Here it costs a core the kernel schedules instead. The hub
keeps a read-only view of the same directory for searches and refreshes it when this process
says it committed. Measured (bench/README.md, ninth round): with a core to spare (500 chat
messages/s on 2 cores) the ack's p50 and p99 fall by about a third; with both cores busy
(1,000/s plus the load generator) it is no better, so ``HUB_SEARCH_WORKER`` is off by default.

Run as ``python -m hub.search.index_worker`` with the hub's ``HUB_*`` settings in the
environment (the hub passes ``HUB_DATA_DIR``, ``HUB_DATABASE_URL`` and ``HUB_LOG_LEVEL``).

Protocol, one pipe each way:

- stdin, hub to worker: single bytes. ``w``: new outbox rows are committed, drain soon; ``d``:
  the rows of your last ``delete`` are deleted. End of file means stop (the hub is shutting
  down, or died): the worker closes the index and exits 0.
- stdout, worker to hub: one JSON object per line. ``{"ready": <docs>}`` once the index writer
  is open; ``{"committed": <outbox rows>, "keys": <key spread>}`` after every index commit, before
  the outbox rows are deleted (so the hub can show the change at once; a crash before the delete
  replays those rows, which is harmless); on SQLite then ``{"delete": [<outbox row ids>]}``:
  the hub deletes them on its own writer and answers ``d``, and the worker waits for that
  before its next batch (it never writes SQLite itself: a second writing process would meet the
  hub's writers in SQLite's busy handler); ``{"error": <message>}`` before a fatal exit.
- exit status: 0 stopped on request, ``EXIT_FAILED`` the drain loop failed (the hub starts a
  new worker), ``EXIT_LOCKED`` another process owns the index writer,
  ``EXIT_SCHEMA`` the directory holds another schema version (the hub rebuilds before it starts a
  worker, so this means someone swapped the directory under it).

Logs go to stderr, which the hub's process shares. SIGINT is ignored: a terminal's Ctrl-C reaches
the whole process group, and the hub stops this process itself, after its own last writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import IO

from hub.db.engine import make_engine, make_session_factory
from hub.search.backend import index_dir
from hub.search.indexer import DrainResult, Indexer
from hub.settings import Settings, SettingsError
from recorder.search import IndexUnavailableError, SchemaMismatchError, TantivyIndex
from recorder.search.tantivy_keys import to_wire

log = logging.getLogger(__name__)

WAKE = b"w"  # hub to worker: new outbox rows are committed
DELETED = b"d"  # hub to worker: the rows of your last "delete" are gone
DELETE_WAIT_S = 10.0
EXIT_FAILED = 1
EXIT_LOCKED = 3
EXIT_SCHEMA = 4
EXIT_SETTINGS = 5


def say(out: IO[bytes], message: dict[str, object]) -> None:
    """One protocol line to the hub (small and rare: a blocking write is fine)."""
    out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    out.flush()


async def serve(settings: Settings, out: IO[bytes], *, poll_s: float = 0.5) -> int:
    """Own the index writer and drain the outbox until stdin closes; returns the exit status."""
    try:
        index = await asyncio.to_thread(TantivyIndex.open, index_dir(settings))
    except IndexUnavailableError as exc:
        say(out, {"error": exc.message})
        return EXIT_LOCKED
    except SchemaMismatchError as exc:
        say(out, {"error": exc.message})
        return EXIT_SCHEMA
    engine = make_engine(settings)

    def committed(result: DrainResult) -> None:
        say(out, {"committed": result.rows, "keys": to_wire(index.key_spread)})

    deleted = asyncio.Event()

    async def hub_deletes(ids: list[int]) -> None:
        deleted.clear()
        say(out, {"delete": ids})
        try:
            await asyncio.wait_for(deleted.wait(), DELETE_WAIT_S)
        except TimeoutError:  # the rows stay and are indexed again later: harmless
            log.warning("search index worker: the hub did not confirm deleting %d outbox rows "
                        "within %.0f s", len(ids), DELETE_WAIT_S)  # fmt: skip

    indexer = Indexer(
        make_session_factory(engine),
        index,
        poll_s=poll_s,
        on_commit=committed,
        sqlite_deletes=hub_deletes if settings.is_sqlite else None,
    )
    loop = asyncio.get_running_loop()
    wakes = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(wakes), sys.stdin)
    say(out, {"ready": await index.count()})
    drainer = asyncio.create_task(indexer.run())
    listener = asyncio.create_task(_listen(wakes, indexer, deleted))
    try:
        await asyncio.wait({drainer, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (drainer, listener):  # a batch cut short is replayed from the outbox
            task.cancel()
        await asyncio.gather(drainer, listener, return_exceptions=True)
        await index.close()
        await engine.dispose()
    if drainer.cancelled() or drainer.exception() is None:
        log.info("search index worker: the hub closed the pipe, stopping")
        return 0
    # the drain loop only ends on an unexpected error (a lost database, a bug): exit and let
    # the hub start a fresh process, which replays the outbox
    log.error("search index worker: the drain loop failed", exc_info=drainer.exception())
    return EXIT_FAILED


async def _listen(wakes: asyncio.StreamReader, indexer: Indexer, deleted: asyncio.Event) -> None:
    while chunk := await wakes.read(4096):
        if WAKE in chunk:
            indexer.wake()
        if DELETED in chunk:
            deleted.set()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"search index worker: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s[index worker]: %(message)s",
    )
    return asyncio.run(serve(settings, sys.stdout.buffer))


if __name__ == "__main__":
    sys.exit(main())
