"""The embedded index's writer in its own process: the hub reads, the worker writes.

Through the real hub under uvicorn and the real worker process (``python -m
hub.search.index_worker``): messages become searchable, a killed worker is replaced and loses
nothing and duplicates nothing, the hub's shutdown stops it, a worker whose hub vanished stops by
itself, and the hub shrugs off garbage on the worker's pipe.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hub.domain import Role
from hub.search.index_worker_supervisor import IndexWorkerSupervisor, worker_environment
from hub.search.service import SearchService
from hub.settings import Settings, SettingsError
from recorder.search import TantivyIndex
from tests.conftest import Db
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_search_api import search
from tests.hub.test_search_outbox import ingest, outbox_rows


def service(hub: RunningHub) -> SearchService:
    found = hub.services.extras["search"]
    assert isinstance(found, SearchService)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is not alive either
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def until_true(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def total(hub: RunningHub, **params: Any) -> int:
    return int((await search(hub, Role.QA, **params))["total"])


async def test_the_worker_process_writes_and_the_hub_searches(db: Db) -> None:
    async with running_hub(db, search_worker=True) as hub:
        search_service = service(hub)
        worker = search_service.worker
        assert worker is not None and search_service.indexer is None
        index = search_service.index
        assert isinstance(index, TantivyIndex) and index.read_only
        await until_true(lambda: worker.pid is not None, "the worker to start")
        assert worker.pid is not None and worker.pid != os.getpid() and alive(worker.pid)
        receipts = [
            await ingest(hub.services.ingestor, f"walrus number {n}", ext=f"w{n}")
            for n in range(20)
        ]

        async def all_found() -> bool:
            return await total(hub, text="walrus") == len(receipts)

        await until(all_found, "20 messages to be searchable")
        assert worker.commits >= 1
        body = await search(hub, Role.QA, text="walrus", limit=50)
        assert {h["id"] for h in body["hits"]} == {r.interaction_id for r in receipts}

        async def outbox_empty() -> bool:
            return not await outbox_rows(db.sessions)

        await until(outbox_empty, "the worker to delete the drained outbox rows")
        pid = worker.pid
    assert pid is not None
    deadline = time.monotonic() + 5
    while alive(pid):  # the hub's shutdown closed the worker's stdin and waited for it
        assert time.monotonic() < deadline, "the worker outlived its hub"
        await asyncio.sleep(0.05)


async def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_doubled(db: Db) -> None:
    async with running_hub(db, search_worker=True) as hub:
        worker = service(hub).worker
        assert worker is not None
        await until_true(lambda: worker.pid is not None, "the worker to start")
        first = await ingest(hub.services.ingestor, "otter before the crash", ext="k0")
        await until(lambda: _found(hub, "otter", 1), "the first message")
        old_pid = worker.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        # written while no worker runs: the outbox keeps them for the next one
        later = [
            await ingest(hub.services.ingestor, f"otter after the crash {n}", ext=f"k{n + 1}")
            for n in range(5)
        ]
        await until_true(lambda: worker.starts >= 2 and worker.pid != old_pid, "a new worker")
        await until(lambda: _found(hub, "otter", 6), "every message after the restart")
        body = await search(hub, Role.QA, text="otter", limit=50)
        ids = [h["id"] for h in body["hits"]]
        assert sorted(ids) == sorted([first.interaction_id, *(r.interaction_id for r in later)])
        assert len(ids) == len(set(ids)) == 6


async def _found(hub: RunningHub, word: str, want: int) -> bool:
    return await total(hub, text=word) == want


async def test_garbage_from_the_worker_is_logged_and_ignored(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    index = TantivyIndex.open(None)
    states: list[str | None] = []
    deleted: list[list[int]] = []

    async def delete(ids: list[int]) -> None:
        deleted.append(ids)

    supervisor = IndexWorkerSupervisor(db.settings, index, states.append, delete)
    await supervisor._handle(b"not json at all\n", None)
    await supervisor._handle(b"[1, 2]\n", None)
    await supervisor._handle(b'{"what": 1}\n', None)
    await supervisor._handle(b'{"committed": 3, "keys": {"low": "x"}}\n', None)
    assert supervisor.commits == 1  # the commit still counts: the bad hint is dropped
    await supervisor._handle(b'{"delete": [1, "2"]}\n', None)
    await supervisor._handle(b'{"delete": [4, 5]}\n', None)
    assert deleted == [[4, 5]]
    await supervisor._handle(b'{"error": "cannot open the index writer"}\n', None)
    assert states == ["search index worker failed: cannot open the index writer"]
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("unreadable" in m and "not json" in m for m in messages)
    assert any("unreadable" in m and "not an object" in m for m in messages)
    assert any("unknown message" in m for m in messages)
    assert any("bad key spread" in m for m in messages)
    assert any("bad outbox ids" in m for m in messages)
    await index.close()


async def test_a_worker_stops_when_its_hub_goes_away(db: Db) -> None:
    """The hub dying (SIGKILL, no clean shutdown) closes the worker's stdin: it exits 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.search.index_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=worker_environment(db.settings),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith(b'{"ready":'), line
        proc.stdin.close()
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_hub_whose_worker_finds_the_index_taken_answers_503(db: Db) -> None:
    owner = TantivyIndex.open(db.settings.data_dir / "index")  # another hub owns the index
    try:
        async with running_hub(db, search_worker=True) as hub, hub.client(Role.QA) as c:
            for _ in range(150):
                r = await c.get("/api/search", params={"text": "x"})
                if r.status_code == 503:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 503 and r.json()["code"] == "search_unavailable"
            assert "index worker failed" in r.json()["message"]
    finally:
        await owner.close()


async def test_a_second_worker_on_the_same_index_says_it_is_locked(db: Db) -> None:
    owner = TantivyIndex.open(db.settings.data_dir / "index")
    try:
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hub.search.index_worker"],
            input=b"",
            capture_output=True,
            env=worker_environment(db.settings),
            timeout=60,
        )
    finally:
        await owner.close()
    assert out.returncode == 3, out.stderr
    assert b'"error"' in out.stdout and b"index writer" in out.stdout


async def test_bad_settings_stop_the_worker_with_a_clear_message(db: Db) -> None:
    env = worker_environment(db.settings) | {"HUB_LOG_LEVEL": "LOUD"}
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hub.search.index_worker"],
        input=b"",
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 5
    assert b"HUB_LOG_LEVEL" in out.stderr


async def test_with_the_worker_off_the_hub_indexes_in_process(db: Db) -> None:
    async with running_hub(db) as hub:  # the default
        search_service = service(hub)
        assert search_service.worker is None and search_service.indexer is not None
        await ingest(hub.services.ingestor, "narwhal in process", ext="i1")
        await until(lambda: _found(hub, "narwhal", 1), "the message")


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).search_worker is False
    assert Settings.from_env({"HUB_SEARCH_WORKER": "true"}).search_worker is True
    with pytest.raises(SettingsError, match="HUB_SEARCH_WORKER"):
        Settings.from_env({"HUB_SEARCH_WORKER": "maybe"})
