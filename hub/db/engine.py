"""Engine and session factory for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode with foreign keys on and a busy timeout, so the API and background loops
can read while one writer commits.

PostgreSQL connections are checked before use, but cheaply: SQLAlchemy's ``pool_pre_ping`` costs
three round trips per checkout with asyncpg (BEGIN, ``;``, ROLLBACK), a quarter of a busy
intake batch's. A connection the server closed (restart, ``pg_terminate_backend``) is already
known closed to asyncpg, so that check is free; only a connection idle for a while, which a
firewall may have dropped silently, gets the real ping.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from hub.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]

PING_AFTER_IDLE_S = 30.0


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


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
        engine = create_async_engine(url, pool_size=5, max_overflow=5)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
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
