"""Migrations: round-trip on both backends, and the models never drift from the migrations."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from hub.db.migrate import downgrade, upgrade
from hub.db.models import Base
from tests.conftest import Db


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


async def test_models_match_migrations(db: Db) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], f"models and migrations differ: {diff}"


async def test_downgrade_and_upgrade_round_trip(db: Db) -> None:
    await downgrade(db.engine, "base")
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await upgrade(db.engine)
    await upgrade(db.engine)  # idempotent
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set(Base.metadata.tables)
