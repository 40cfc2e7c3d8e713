"""Behaviour specific to the embedded tantivy backend: stemming, persistence, locking, scale."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import tantivy

from recorder.search import (
    IndexUnavailableError,
    SchemaMismatchError,
    SearchQuery,
    Sort,
    TantivyIndex,
)
from tests.recorder.conftest import T0, make_doc


def small(directory: Path | None) -> TantivyIndex:
    return TantivyIndex.open(directory, writer_heap=15_000_000, writer_threads=1)


async def test_english_stemming_matches_word_forms() -> None:
    index = small(None)
    await index.upsert([make_doc(1, text="The customer called twice"),
                        make_doc(2, text="calls dropped"), make_doc(3, text="callback")])
    await index.commit()
    found = await index.search(SearchQuery(text="calling"))
    assert sorted(h.id for h in found.hits) == ["ix_00001", "ix_00002"]
    assert "<mark>called</mark>" in found.hits[0].highlights["text"] or \
        "<mark>calls</mark>" in found.hits[0].highlights["text"]
    await index.close()


async def test_committed_data_survives_reopen_and_uncommitted_does_not(tmp_path: Path) -> None:
    index = small(tmp_path)
    await index.upsert([make_doc(1, text="durable")])
    await index.commit()
    await index.upsert([make_doc(2, text="volatile")])
    await index.close()
    reopened = small(tmp_path)
    assert await reopened.count() == 1
    assert [h.id for h in (await reopened.search(SearchQuery(text="durable"))).hits] == [
        "ix_00001"]
    await reopened.close()


async def test_second_writer_on_same_directory_is_refused(tmp_path: Path) -> None:
    index = small(tmp_path)
    with pytest.raises(IndexUnavailableError):
        small(tmp_path)
    await index.close()
    again = small(tmp_path)  # the lock is released on close
    await again.close()


def test_foreign_or_outdated_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.bin").write_bytes(b"x")
    with pytest.raises(SchemaMismatchError):
        small(tmp_path / "foreign")
    old = tmp_path / "old"
    old.mkdir()
    (old / "contacthub-index.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(SchemaMismatchError) as err:
        small(old)
    assert err.value.code == "search_schema_mismatch"


async def test_closed_index_refuses_writes() -> None:
    index = small(None)
    await index.close()
    with pytest.raises(IndexUnavailableError):
        await index.upsert([make_doc(1)])


async def test_pagination_goes_past_ten_thousand_hits() -> None:
    index = small(None)
    n = 12_345
    await index.bulk_insert(make_doc(i, text="hello", at=T0 + timedelta(milliseconds=i // 3))
                            for i in range(n))
    await index.commit()
    for sort in (Sort.TIME_DESC, Sort.RELEVANCE):
        seen: set[str] = set()
        cursor = None
        pages = 0
        while True:
            page = await index.search(SearchQuery(text="hello", sort=sort, limit=1000,
                                                  cursor=cursor, highlight=False))
            assert page.total == n
            seen.update(h.id for h in page.hits)
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == n and pages == 13
    await index.close()


async def test_searches_run_concurrently_with_writes() -> None:
    index = small(None)
    await index.upsert([make_doc(i, text="steady") for i in range(50)])
    await index.commit()

    async def writer() -> None:
        for i in range(50, 60):
            await index.upsert([make_doc(i, text="steady")])
            await index.commit()

    async def reader() -> list[int]:
        return [(await index.search(SearchQuery(text="steady"))).total for _ in range(20)]

    _, totals = await asyncio.gather(writer(), reader())
    assert all(50 <= t <= 60 for t in totals) and totals == sorted(totals)
    assert (await index.search(SearchQuery(text="steady"))).total == 60
    await index.close()


CRASHING_WRITER = """
import asyncio, os, sys
from pathlib import Path
from recorder.search import TantivyIndex
from tests.recorder.conftest import make_doc

async def main() -> None:
    index = TantivyIndex.open(Path(sys.argv[1]), writer_heap=15_000_000, writer_threads=1)
    await index.upsert([make_doc(1, text="committed before the crash")])
    await index.commit()
    await index.upsert([make_doc(2, text="staged but never committed")])
    os._exit(9)  # no close, no cleanup: like a killed process

asyncio.run(main())
"""


async def test_a_crash_keeps_commits_loses_only_staged_and_frees_the_lock(
        tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_WRITER, str(tmp_path / "ix"),
        cwd=Path(__file__).resolve().parents[2])
    assert await proc.wait() == 9
    index = small(tmp_path / "ix")  # would raise if the dead process still held the lock
    assert await index.count() == 1
    assert [h.id for h in (await index.search(SearchQuery(text="crash"))).hits] == ["ix_00001"]
    assert (await index.search(SearchQuery(text="staged"))).total == 0
    await index.close()


BUSY_WRITER = """
import asyncio, sys
from pathlib import Path
from recorder.search import TantivyIndex
from tests.recorder.conftest import make_doc

async def main() -> None:
    index = TantivyIndex.open(Path(sys.argv[1]), writer_heap=15_000_000, writer_threads=1)
    for batch in range(60):  # many small commits: tantivy merges and deletes segments meanwhile
        await index.upsert([make_doc(batch * 10 + n, text=f"otter {batch}") for n in range(10)])
        await index.commit()
        print(batch, flush=True)
    await index.close()

asyncio.run(main())
"""


async def test_a_reader_follows_another_process_through_merges(tmp_path: Path) -> None:
    """The hub's read-only view while the index worker process commits: each refresh sees the
    new commit, reads never fail though merges delete the segment files an older view uses,
    and writes through the reader are refused."""
    reader = TantivyIndex.open(tmp_path / "ix", writer=False)
    assert reader.read_only
    with pytest.raises(IndexUnavailableError, match="read only"):
        await reader.upsert([make_doc(1)])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BUSY_WRITER, str(tmp_path / "ix"),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    old_view: tantivy.Searcher | None = None
    old_files: set[str] = set()
    seen = 0
    while line := await proc.stdout.readline():
        committed = (int(line) + 1) * 10
        assert (await reader.search(SearchQuery(text="otter"))).total == seen  # not refreshed
        await reader.refresh(None)
        seen = (await reader.search(SearchQuery(text="otter"))).total
        assert seen == committed
        if old_view is None and committed == 100:
            old_view = reader._snap.searcher  # pinned: its segments get merged away later
            old_files = {p.name for p in (tmp_path / "ix").iterdir()}
    assert await proc.wait() == 0
    assert await reader.count() == 600
    assert old_view is not None
    assert old_files - {p.name for p in (tmp_path / "ix").iterdir()}, "no segment was merged away"
    hits = old_view.search(tantivy.Query.all_query(), 200).hits
    stored = [old_view.doc(address)["id"][0] for _, address in hits]  # reads the deleted files
    assert sorted(stored) == [f"ix_{n:05d}" for n in range(100)]
    await reader.close()
