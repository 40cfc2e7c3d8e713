"""The SQLite engine's write queue: pooled writers wait in Python, one transaction at a time,
readers never wait, and the queue is let go however a transaction ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.actions import batch_writer
from hub.actions.batch_writer import SqliteWriter
from hub.db import engine as engine_module
from hub.db.engine import SessionFactory, make_engine, make_session_factory, write_queue
from hub.settings import Settings


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, SessionFactory]]:
    engine = make_engine(Settings(data_dir=tmp_path, secret_key="test-secret"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"))
    try:
        yield engine, make_session_factory(engine)
    finally:
        await engine.dispose()


async def test_writers_take_turns_and_all_commit(
    sqlite: tuple[AsyncEngine, SessionFactory],
) -> None:
    _, sessions = sqlite
    inside = 0
    most = 0

    async def writer(i: int) -> None:
        nonlocal inside, most
        async with sessions() as s, s.begin():
            await s.execute(text("SELECT count(*) FROM t"))  # reads do not queue
            await s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": i})
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.005)  # hold the transaction across an await
            await s.execute(text("UPDATE t SET v = v + 1 WHERE id = 1"))
            inside -= 1

    await asyncio.gather(*(writer(i) for i in range(40)))
    assert most == 1  # never two write transactions at once
    async with sessions() as s:
        count, first = (await s.execute(text("SELECT count(*), min(id) FROM t"))).one()
        assert count == 40
        assert (await s.execute(text("SELECT v FROM t WHERE id = :i"), {"i": first})).scalar() == (
            40
        )


async def test_a_reader_does_not_wait_for_a_writer(
    sqlite: tuple[AsyncEngine, SessionFactory],
) -> None:
    _, sessions = sqlite
    holding = asyncio.Event()
    done = asyncio.Event()

    async def writer() -> None:
        async with sessions() as s, s.begin():
            await s.execute(text("INSERT INTO t (v) VALUES (1)"))
            holding.set()
            await done.wait()

    task = asyncio.create_task(writer())
    await holding.wait()
    async with sessions() as s:
        rows = await asyncio.wait_for(s.execute(text("SELECT count(*) FROM t")), 2.0)
        assert rows.scalar() == 0  # the writer has not committed
    done.set()
    await task


async def test_the_queue_is_released_after_rollback_and_after_commit_mid_session(
    sqlite: tuple[AsyncEngine, SessionFactory],
) -> None:
    _, sessions = sqlite
    with pytest.raises(RuntimeError):
        async with sessions() as s, s.begin():
            await s.execute(text("INSERT INTO t (v) VALUES (1)"))
            raise RuntimeError("boom")
    async with sessions() as s:
        await s.execute(text("INSERT INTO t (v) VALUES (2)"))
        await s.commit()
        await s.execute(text("SELECT 1"))  # same session, new transaction
        async with sessions() as other, other.begin():  # would wait 10 s if still held
            await asyncio.wait_for(other.execute(text("INSERT INTO t (v) VALUES (3)")), 2.0)
    async with sessions() as s:
        assert (await s.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all() == [2, 3]


async def test_a_writer_waiting_too_long_fails_like_a_locked_database(
    sqlite: tuple[AsyncEngine, SessionFactory], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sessions = sqlite
    monkeypatch.setattr(engine_module, "WRITE_WAIT_S", 0.2)
    async with sessions() as s, s.begin():
        await s.execute(text("INSERT INTO t (v) VALUES (1)"))
        async with sessions() as other:
            with pytest.raises(OperationalError, match="write queue"):
                await other.execute(text("INSERT INTO t (v) VALUES (2)"))
    async with sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM t"))).scalar() == 1


async def test_cancelled_writers_never_keep_the_queue(
    sqlite: tuple[AsyncEngine, SessionFactory],
) -> None:
    """Shutdown cancels loops that may be queued or mid-transaction; none may leave the queue
    taken (a lost lock would stall every later writer)."""
    _, sessions = sqlite

    async def writer(hold: float) -> None:
        async with sessions() as s, s.begin():
            await s.execute(text("INSERT INTO t (v) VALUES (1)"))
            await asyncio.sleep(hold)

    for round_ in range(20):
        tasks = [asyncio.create_task(writer(0.001 * (i % 3))) for i in range(8)]
        await asyncio.sleep(0.0005 * round_)  # cancel at varying points of the queue
        for task in tasks[::2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    async with sessions() as s, s.begin():
        await asyncio.wait_for(s.execute(text("INSERT INTO t (v) VALUES (2)")), 2.0)


async def test_the_group_commit_writer_checkpoints_after_a_due_batch_never_before_it(
    sqlite: tuple[AsyncEngine, SessionFactory], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL checkpoint (~1.5 ms after an idle spell) must not delay the batch that found it
    due: it runs after that batch committed, in the writer's checkpoint thread."""
    engine, sessions = sqlite
    database = engine.sync_engine.url.database
    assert database is not None
    writer = SqliteWriter(database, write_queue(engine))
    order: list[str] = []
    real = writer._checkpoint

    def checkpoint() -> None:
        real()
        order.append("checkpoint")

    def batch(conn: Connection) -> None:
        order.append("batch")
        conn.exec_driver_sql("INSERT INTO t (v) VALUES (1)")

    monkeypatch.setattr(writer, "_checkpoint", checkpoint)
    writer._checkpointed -= batch_writer.CHECKPOINT_EVERY_S + 1  # due now
    await writer.run(batch)
    assert order == ["batch"]  # the batch's caller got its answer first
    await asyncio.get_running_loop().run_in_executor(writer._checkpoints, lambda: None)
    await writer.run(batch)  # not due again so soon
    await asyncio.get_running_loop().run_in_executor(writer._checkpoints, lambda: None)
    assert order == ["batch", "checkpoint", "batch"]  # and the checkpoint itself did not fail
    async with sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM t"))).scalar() == 2
