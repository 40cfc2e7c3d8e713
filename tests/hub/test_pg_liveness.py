"""PostgreSQL pool connections are checked before use without a ping round trip per checkout.

hub.db.engine replaces ``pool_pre_ping`` (three round trips with asyncpg) by a free check of
asyncpg's own "closed" flag, plus a real ping only for connections idle for a while. These tests
make sure a connection the server killed, or one failing its ping, is replaced transparently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import hub.db.engine as engine_mod
from hub.db.engine import make_engine
from hub.settings import Settings
from tests.conftest import PG_ADMIN_URL


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


@pytest.fixture
async def pg_engine(pg_database: str, tmp_path: Path) -> Any:
    engine = make_engine(Settings(data_dir=tmp_path, database_url=pg_database, secret_key="t"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_connection_killed_by_the_server_is_replaced_before_use(
    pg_engine: AsyncEngine,
) -> None:
    pid = await backend_pid(pg_engine)  # now idle in the pool
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()
    await asyncio.sleep(0.3)  # the server's goodbye reaches asyncpg, which marks it closed
    assert await backend_pid(pg_engine) != pid  # no error reached the caller


async def test_idle_connection_is_pinged_and_replaced_when_the_ping_fails(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await backend_pid(pg_engine)
    pings: list[bool] = []
    real_ping = cast(Callable[[Any], None], AsyncAdapt_asyncpg_connection.ping)

    def failing_ping(self: Any) -> None:
        pings.append(True)
        if len(pings) == 1:
            raise ConnectionError("silently dropped by a firewall")
        real_ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", failing_ping)
    monkeypatch.setattr(engine_mod, "PING_AFTER_IDLE_S", -1.0)  # every checkout counts as idle
    assert await backend_pid(pg_engine) != pid
    assert pings  # the idle connection was pinged before use


async def test_busy_connections_are_not_pinged(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await backend_pid(pg_engine)
    pings: list[bool] = []
    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", lambda self: pings.append(True))
    for _ in range(5):
        await backend_pid(pg_engine)
    assert pings == []
