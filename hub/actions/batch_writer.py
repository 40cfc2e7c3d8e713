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
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from hub.db.engine import SessionFactory, SqliteWriteQueue, write_queue
from hub.db.engine import _sqlite_pragmas as sqlite_pragmas  # the hub's own connection setup

R = TypeVar("R")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Plan:
    """One INSERT compiled for a dialect: its SQL, its columns in placeholder order, and each
    column's bind processor (None where the driver takes the Python value as it is)."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


# per dialect (an engine's, whose JSON serializer the processors use), then by the statement
# itself (callers pass statements built once) and the rows' keys
_PLANS: weakref.WeakKeyDictionary[Dialect, dict[tuple[Insert, tuple[str, ...]], _Plan | None]] = (
    weakref.WeakKeyDictionary()
)


def _plan(stmt: Insert, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    """The statement's plan for rows with ``keys``; None when a parameter is not one of those
    columns (then SQLAlchemy runs it)."""
    plans = _PLANS.get(dialect)
    if plans is None:
        plans = _PLANS[dialect] = {}
    if (stmt, keys) not in plans:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.binds[name].key for name in compiled.positiontup or ())
        table = cast(Table, stmt.table)
        plan = None
        if sorted(names) == sorted(keys) and all(name in table.c for name in names):
            processors = tuple(
                table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            )
            plan = _Plan(compiled.string, names, processors)
        plans[(stmt, keys)] = plan
    return plans[(stmt, keys)]


def insert_rows(conn: Connection, stmt: Insert, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(stmt, rows)`` for a batch's INSERT, with the per-row work done once.

    Why: for an executemany SQLAlchemy builds a parameter dict per row and then a list per row
    through every column's processor, ~10 us per row of the ingest's hottest tables (about a
    sixth of the hub's CPU per ingested mail). Here the INSERT is compiled once per statement
    and column set, and the values are converted column by column (a value seen again, such as
    the batch's one timestamp or a None, is converted once) with the same processors
    SQLAlchemy would use, so the rows stored are the same. Only on SQLite (qmark parameters,
    sqlite3 or aiosqlite): other dialects, a statement with a parameter that is not a column of
    its table, or rows with different keys, take ``conn.execute``. Every row must name every
    column the statement should write (defaults are not applied here; callers pass them).
    """
    if not rows:
        return
    keys = tuple(rows[0])
    dialect = conn.dialect
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        conn.execute(stmt, rows)
        return
    plan = _plan(stmt, dialect, keys)
    if plan is None or any(len(row) != len(keys) for row in rows):
        conn.execute(stmt, rows)  # other parameters, or not all rows name the same columns
        return
    values: list[list[Any]] = []
    try:
        for name, process in zip(plan.columns, plan.processors, strict=True):
            column = [row[name] for row in rows]
            if process is not None:
                column = _converted(column, process)
            values.append(column)
    except KeyError:  # a row with other keys: SQLAlchemy sorts that out
        conn.execute(stmt, rows)
        return
    conn.exec_driver_sql(plan.sql, list(zip(*values, strict=True)))


def _converted(column: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    """``process`` over ``column``, once per distinct object (the same timestamp, None)."""
    seen: dict[int, Any] = {}
    out: list[Any] = []
    for value in column:
        key = id(value)
        if key not in seen:
            seen[key] = process(value)
        out.append(seen[key])
    return out


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
