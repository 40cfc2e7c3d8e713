"""Where a group-commit batch runs its statements: one transaction, written as plain sync code.

Why: the batch writer (:mod:`hub.actions.intake_batch`) issues a fixed handful of statements
per batch, but through SQLAlchemy's asyncio layer on aiosqlite every statement is several hops
to the driver's thread and back (cursor, execute, fetch, close), about 0.25 ms of CPU each on
this project's machines against ~0.03 ms for the same statement on a plain sqlite3
connection, and under load each hop also waits for the GIL. At a few hundred chat messages per
second batches are small, so that, not the row work, was most of the hub's cost per message.

So the batch is sync code taking a :class:`sqlalchemy.engine.Connection`, and:

- on SQLite (a database file), :class:`SqliteWriter` runs it on a dedicated sync connection,
  on the event loop when the write lock is free (see the class for why that is the fast and
  safe place), in its own thread when it must wait for the lock;
- elsewhere (PostgreSQL via asyncpg, in-memory SQLite), :class:`AsyncWriter` runs the same code
  on a pooled async connection through ``AsyncConnection.run_sync`` (asyncpg has no thread
  hop to save).

Either way the callers' futures are resolved only after ``COMMIT`` returned.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from hub.db.engine import SessionFactory, SqliteWriteQueue, write_queue
from hub.db.engine import _sqlite_pragmas as sqlite_pragmas  # the hub's own connection setup

R = TypeVar("R")
log = logging.getLogger(__name__)


class BatchWriter(Protocol):
    async def run(self, work: Callable[[Connection], R], /) -> R:
        """Run ``work`` in one transaction; return its result after the commit (roll back and
        raise if it raised)."""
        ...


class AsyncWriter:
    """The batch on a pooled async connection (greenlet-adapted sync code)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def run(self, work: Callable[[Connection], R], /) -> R:
        async with self._sessions() as session, session.begin():
            conn = await session.connection()
            return await conn.run_sync(work)


LOCK_WAIT_S = 10.0  # as the hub's busy_timeout: then the batch fails (its items go one by one)
CHECKPOINT_EVERY_S = 5.0


def _tune(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")  # never wait inside sqlite: see SqliteWriter
    cur.execute("PRAGMA wal_autocheckpoint=0")  # no checkpoint I/O on the event loop
    cur.close()


def _busy(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class SqliteWriter:
    """The batch on a dedicated sync sqlite3 connection, written without driver-thread hops.

    ``BEGIN IMMEDIATE`` is tried on the event loop without waiting: when the write lock is free
    (nearly always) the whole batch and its ``COMMIT`` run right there, well under a millisecond
    for a typical batch, with the lock held so nothing can make them wait. When another
    connection holds the lock, the batch goes to the writer's own thread, which polls for the
    lock every millisecond (sqlite's own busy handler sleeps up to 100 ms between tries) and
    then runs the batch there. Running statements in a thread on every batch was slower under
    load: each sqlite call releases the GIL, and getting it back from a busy event loop takes up
    to the interpreter's switch interval (5 ms), for every statement.

    This connection never checkpoints on commit (that I/O would land on the event loop): the
    hub's other connections do it as usual, and a thread of the writer runs a passive checkpoint
    just after a batch when ``CHECKPOINT_EVERY_S`` have passed, so the WAL is bounded even if
    nothing else writes (before a batch, it delayed that batch's items by ~1.5 ms).

    ``queue`` is the engine's :class:`~hub.db.engine.SqliteWriteQueue`: a batch takes its turn
    there with the pool's writers (API replies, the dispatcher, delivery), first come first
    served, so neither side starves the other in SQLite's busy handler.
    """

    def __init__(self, database: str, queue: SqliteWriteQueue | None = None) -> None:
        self._queue = queue
        self._engine: Engine = create_engine(
            f"sqlite:///{database}",
            connect_args={"check_same_thread": False},  # the loop and the writer's thread
            isolation_level="AUTOCOMMIT",  # transactions are this class's own BEGIN/COMMIT
            poolclass=StaticPool,
        )
        event.listen(self._engine, "connect", sqlite_pragmas)
        event.listen(self._engine, "connect", _tune)
        self._conn: Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-writer")
        self._database = database
        self._checkpoints = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        self._checkpointer: sqlite3.Connection | None = None  # used in that thread only
        self._checkpointed = time.monotonic()
        self._checkpointing = False
        self.waited = 0  # batches that found the lock taken (tests, diagnostics)
        # an Ingestor has no close(): its threads and connections go with it
        weakref.finalize(self, _close, self._thread, self._engine)
        weakref.finalize(self, self._checkpoints.shutdown, wait=False)

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect()
        return self._conn

    @staticmethod
    def _try_begin(conn: Connection) -> bool:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as exc:
            if _busy(exc):
                return False
            raise
        return True

    def _begin_waiting(self, conn: Connection) -> None:
        deadline = time.monotonic() + LOCK_WAIT_S
        while not self._try_begin(conn):
            if time.monotonic() > deadline:
                raise TimeoutError("the database write lock stayed taken")
            time.sleep(0.001)

    @staticmethod
    def _finish(conn: Connection, work: Callable[[Connection], R]) -> R:
        """Run ``work`` in the open transaction and commit; roll back if anything failed."""
        try:
            result = work(conn)
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            dbapi = conn.connection.dbapi_connection
            if dbapi is not None and dbapi.in_transaction:
                conn.exec_driver_sql("ROLLBACK")
            raise
        return result

    def _waiting_batch(self, conn: Connection, work: Callable[[Connection], R]) -> R:
        self._begin_waiting(conn)
        return self._finish(conn, work)

    def _checkpoint(self) -> None:
        """A passive checkpoint on a connection of its own (the writer's may be in use on the
        loop meanwhile); it never holds the write lock, so batches go on while it copies."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self._database, check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpoint_if_due(self) -> None:
        """After a batch, not before it: the checkpoint (~1.5 ms after an idle spell) runs in
        its own thread and never delays an item; one at a time."""
        now = time.monotonic()
        if now - self._checkpointed <= CHECKPOINT_EVERY_S or self._checkpointing:
            return
        self._checkpointed = now
        self._checkpointing = True
        done = asyncio.get_running_loop().run_in_executor(self._checkpoints, self._checkpoint)
        done.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if not done.cancelled() and done.exception() is not None:
            log.warning("WAL checkpoint failed", exc_info=done.exception())

    async def run(self, work: Callable[[Connection], R], /) -> R:
        loop = asyncio.get_running_loop()
        conn = self._connection()
        queue = self._queue
        if queue is not None:
            await queue.acquire()
        try:
            if self._try_begin(conn):
                return self._finish(conn, work)
            self.waited += 1
            return await loop.run_in_executor(self._thread, self._waiting_batch, conn, work)
        finally:
            if queue is not None:
                queue.release()
            self._checkpoint_if_due()


def _close(thread: ThreadPoolExecutor, engine: Engine) -> None:
    thread.shutdown(wait=False)
    engine.dispose()


def writer_for(sessions: SessionFactory) -> BatchWriter:
    """The sqlite3 writer for a SQLite database file, else the async one."""
    bind = sessions.kw.get("bind")
    if isinstance(bind, AsyncEngine):
        url = bind.sync_engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return SqliteWriter(url.database, write_queue(bind))
    return AsyncWriter(sessions)


_SHARED = "pooled_writes_writer"


def shared_writer(sessions: SessionFactory, extras: dict[str, Any]) -> BatchWriter:
    """One writer per hub for short write units outside the ingest (agent replies, delivery
    outcomes), kept in ``extras`` (the hub's ``Services.extras``): on SQLite their writes then
    hold the write lock for a fraction of a millisecond instead of one event-loop cycle per
    statement through the pool's driver thread."""
    writer = extras.get(_SHARED)
    if writer is None:
        writer = extras[_SHARED] = writer_for(sessions)
    return cast(BatchWriter, writer)
