"""Engine and session factory for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode with foreign keys on and a busy timeout, so the API and background loops
can read while one writer commits. Writers on the pool queue in Python, not in SQLite: see
:class:`SqliteWriteQueue`.

PostgreSQL connections are checked before use, but cheaply: SQLAlchemy's ``pool_pre_ping`` costs
three round trips per checkout with asyncpg (BEGIN, ``;``, ROLLBACK), a quarter of a busy
intake batch's. A connection the server closed (restart, ``pg_terminate_backend``) is already
known closed to asyncpg, so that check is free; only a connection idle for a while, which a
firewall may have dropped silently, gets the real ping.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from typing import Any

from sqlalchemy import Engine, event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util.concurrency import await_only, in_greenlet

from hub.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]

PING_AFTER_IDLE_S = 30.0
WRITE_WAIT_S = 10.0  # as busy_timeout: a writer waiting longer fails as "database is locked"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")  # where sqlite3 opens a transaction
_HOLDS = "hub_write_lock"


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class SqliteWriteQueue:
    """One asyncio lock per engine that every pooled SQLite write transaction holds.

    Why: SQLite has one writer at a time, and a connection that finds the write lock taken
    waits in SQLite's busy handler, which sleeps in growing steps up to 100 ms between tries.
    Under chat load the API, the dispatcher, delivery and the search drainer kept meeting each
    other there, and a reply or an offer waited tens to hundreds of milliseconds after the lock
    was long free. With this queue they wait on an ``asyncio.Lock`` instead (woken the moment
    the previous writer is done) and then start with ``BEGIN IMMEDIATE``, so a transaction that
    has the queue also has SQLite's lock at once (unless a connection outside this pool, such
    as the group-commit writer or another process, holds it: then the busy handler still waits,
    briefly).

    The lock is taken just before the first INSERT/UPDATE/DELETE/REPLACE of a transaction,
    exactly where sqlite3 itself would open it (so read-only work never queues), and released
    when the transaction has ended: at the next statement on the connection or when it goes
    back to the pool. Waiting longer than ``WRITE_WAIT_S`` fails like SQLite's busy timeout.

    Writers outside the pool on the same database (the group-commit writer's own connection,
    :mod:`hub.actions.batch_writer`) take their turn with :meth:`acquire`/:meth:`release`.
    Without that they met the pool's writers only in SQLite's busy handler, where the pooled
    one lost nearly every time under chat load (the batch writer retries every millisecond,
    the busy handler sleeps up to 100 ms): agents' replies waited seconds for the lock.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    def install(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.sync_engine.pool, "checkin", self._on_checkin)
        event.listen(engine.sync_engine.pool, "invalidate", self._on_invalidate)
        _QUEUES[engine.sync_engine] = self

    async def _acquire(self) -> None:
        # not asyncio.wait_for: on 3.11 it runs the acquire as a separate task, and a cancel
        # or timeout arriving just as that task gets the lock loses the lock for good
        async with asyncio.timeout(WRITE_WAIT_S):
            await self._lock.acquire()

    async def acquire(self) -> None:
        """Wait for this queue's turn (FIFO with the pool's writers); fails like a locked
        database after ``WRITE_WAIT_S``. Free: returns without suspending."""
        try:
            await self._acquire()
        except TimeoutError:
            raise sqlite3.OperationalError(
                f"database is locked (waited {WRITE_WAIT_S:.0f} s for the write queue)"
            ) from None

    def release(self) -> None:
        self._lock.release()

    def _release(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS, False):
            self._lock.release()

    def _before_execute(
        self, conn: Connection, _cursor: Any, statement: str, *_: Any
    ) -> None:
        info = conn.connection.info
        driver = conn.connection.dbapi_connection
        aio = getattr(driver, "_connection", None)  # aiosqlite.Connection
        if driver is None or aio is None or aio.isolation_level is None:
            return  # not aiosqlite, or autocommit: no transaction to queue for
        if info.get(_HOLDS) and not aio.in_transaction:
            self._release(info)  # the transaction that took it has ended
        if info.get(_HOLDS) or not statement.lstrip()[:7].upper().startswith(_WRITE_VERBS):
            return
        if not in_greenlet():
            return  # sync use outside the asyncio layer: SQLite's own locking applies
        await_only(self.acquire())
        info[_HOLDS] = True
        if aio.in_transaction:
            return  # begun by hand (an explicit BEGIN): it upgrades on this statement
        try:
            begin = driver.cursor()
            try:
                begin.execute("BEGIN IMMEDIATE")
            finally:
                begin.close()
        except BaseException:
            self._release(info)
            raise

    def _on_checkin(self, _dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        self._release(record.info)

    def _on_invalidate(self, _dbapi_conn: Any, record: ConnectionPoolEntry, _exc: Any) -> None:
        self._release(record.info)


_QUEUES: weakref.WeakKeyDictionary[Engine, SqliteWriteQueue] = weakref.WeakKeyDictionary()


def write_queue(engine: AsyncEngine) -> SqliteWriteQueue | None:
    """The write queue :func:`make_engine` installed on ``engine`` (SQLite only)."""
    return _QUEUES.get(engine.sync_engine)


def _mark_used(_dbapi_conn: Any, record: ConnectionPoolEntry, *_: Any) -> None:
    record.info["used_at"] = time.monotonic()


def _check_alive(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """Pool checkout hook: raising DisconnectionError makes the pool retry with a new one."""
    if dbapi_conn.driver_connection.is_closed():
        raise exc.DisconnectionError("connection closed by the server")
    if time.monotonic() - record.info.get("used_at", 0.0) > PING_AFTER_IDLE_S:
        try:
            dbapi_conn.ping()
        except Exception as err:
            raise exc.DisconnectionError("connection failed its ping") from err
    record.info["used_at"] = time.monotonic()


def make_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Enough pooled connections for a busy hub's concurrent sessions (API requests, the
        # dispatcher, delivery, indexer, channel loops): an overflow connection is closed on
        # check-in, so a pool smaller than the usual concurrency reopens a connection (a thread
        # plus four PRAGMAs) for most requests under load.
        engine = create_async_engine(url, pool_size=20, max_overflow=10)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        SqliteWriteQueue().install(engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    engine = create_async_engine(url, pool_size=10, max_overflow=10)
    event.listen(engine.sync_engine, "connect", _mark_used)
    event.listen(engine.sync_engine.pool, "checkin", _mark_used)
    event.listen(engine.sync_engine.pool, "checkout", _check_alive)
    return engine


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)
