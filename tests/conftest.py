"""Shared fixtures: a migrated database on SQLite *and* PostgreSQL for every DB-touching test.

PostgreSQL must be running at 127.0.0.1:5432 (it is on the dev machines and in CI); when it is
not, the postgres-parametrized tests fail loudly rather than skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.db.engine import SessionFactory, make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.db.models import Base
from hub.settings import Settings


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop (own thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


PG_ADMIN_URL = os.environ.get(
    "CONTACTHUB_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "contacthub.db"
    settings = Settings(data_dir=path.parent)

    async def go() -> None:
        engine = make_engine(settings)
        await upgrade(engine)
        await engine.dispose()

    run_async(go())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    name = f"contacthub_test_{uuid.uuid4().hex[:10]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    async def migrate() -> None:
        engine = create_async_engine(f"{base}/{name}")
        await upgrade(engine)
        await engine.dispose()

    try:
        run_async(admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:  # connection refused: say exactly what is missing
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    run_async(migrate())
    yield f"{base}/{name}"
    run_async(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Db:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    dialect: str


async def _truncate_all(engine: AsyncEngine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Db]:
    """A migrated, empty database; the test runs once per backend."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "contacthub.db")
        settings = Settings(data_dir=tmp_path, secret_key="test-secret")
    else:
        url = request.getfixturevalue("pg_database")
        settings = Settings(data_dir=tmp_path, database_url=url, secret_key="test-secret")
    engine = make_engine(settings)
    if request.param == "postgres":
        await _truncate_all(engine)
    try:
        yield Db(settings, engine, make_session_factory(engine), request.param)
    finally:
        await engine.dispose()
