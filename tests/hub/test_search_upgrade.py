"""An upgrade that changes the index schema: the hub rebuilds its embedded index by itself.

The old index (schema version 1, as the previous release wrote it) is moved aside, a new one is
filled from the database while search answers 503 "being rebuilt", then the indexer runs and the
old copy is deleted. Nothing that was in the database is missing from search afterwards.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from hub.app import supervise
from hub.events import EventBus
from hub.search.backend import index_dir
from hub.search.service import SearchService
from recorder.search import SearchQuery
from recorder.search.tantivy_schema import SCHEMA_VERSION
from tests.conftest import Db
from tests.hub.test_search_outbox import ingest, make_ingestor
from tests.recorder.test_tantivy_pairs import _write_v1_index


@pytest.mark.parametrize("worker", [False, True], ids=["in-process", "index-worker"])
async def test_an_outdated_index_is_rebuilt_from_the_database_at_start(
    db: Db, worker: bool
) -> None:
    """With the index worker the hub rebuilds, then hands the writer to the worker process."""
    ingestor = make_ingestor(db.sessions)
    for n in range(30):
        await ingest(ingestor, f"thank you for order {n}", ext=f"u{n}", sender=f"+1555010{n:04d}")
    path = index_dir(db.settings)
    _write_v1_index(path)  # what the previous release left on disk (one stale doc)

    settings = replace(db.settings, search_worker=worker)
    service = SearchService(settings, db.sessions, EventBus(), None, poll_s=0.05)
    await service.start(supervise)
    try:
        assert service.index is None  # not searchable while incomplete
        assert service.unavailable_reason.startswith("search index is being rebuilt")
        async with asyncio.timeout(60):
            while service.index is None:
                await asyncio.sleep(0.05)
        result = await service.index.search(SearchQuery(text="thank you", limit=100))
        assert result.total == 30  # every interaction of the database; the stale doc is gone
        # the old copy is deleted right after the new index goes live (not before: a big old
        # index would keep search down while it is removed)
        async with asyncio.timeout(10):
            while [p for p in path.parent.iterdir() if p.name.startswith("index.outdated-")]:
                await asyncio.sleep(0.05)
        marker = json.loads((path / "contacthub-index.json").read_text())
        assert marker == {"schema_version": SCHEMA_VERSION}

        assert (service.worker is not None) == worker
        # and the indexer runs on the new index (it polls the outbox): later messages are found
        await ingest(ingestor, "thank you again", ext="u-late", sender="+15550109999")
        async with asyncio.timeout(10):
            while (await service.index.search(SearchQuery(text="again"))).total != 1:
                await asyncio.sleep(0.05)
    finally:
        await service.stop()
