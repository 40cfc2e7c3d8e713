"""Fixtures for the recorder tests: every search backend behind one ``index`` fixture.

``index`` is parametrized over the implementations, so each conformance test runs against
tantivy in memory, tantivy on disk and Meilisearch. No Meilisearch server can be installed on
the development machine: the Meilisearch variant runs only when ``HUB_MEILI_URL`` (and, if the
server needs one, ``HUB_MEILI_KEY``) points at a live server, and is skipped with that reason
otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recorder.search import MeiliIndex, SearchDoc, SearchIndex, TantivyIndex

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
MEILI_SKIP = ("HUB_MEILI_URL is not set: the Meilisearch conformance run needs a live server "
              "(none can be installed on this machine); set HUB_MEILI_URL to run it")


def make_doc(n: int, **over: Any) -> SearchDoc:
    """A valid document number ``n``; keyword arguments override fields."""
    values: dict[str, Any] = {
        "id": f"ix_{n:05d}", "conversation_id": f"cv_{n // 2:05d}", "contact_id": "ct_alice",
        "channel": "email", "direction": "inbound", "kind": "message",
        "at": T0 + timedelta(minutes=n), "text": f"filler number{n}", "subject": "",
        "queue": "billing", "agent": "ag_bob", "has_recording": False, "qa_score": None,
    }
    values.update(over)
    return SearchDoc(**values)


@pytest.fixture(params=["tantivy-memory", "tantivy-disk", "meili"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchIndex]:
    kind = request.param
    if kind == "tantivy-memory":
        ix: SearchIndex = TantivyIndex.open(None, writer_heap=15_000_000, writer_threads=1)
    elif kind == "tantivy-disk":
        ix = TantivyIndex.open(tmp_path / "index", writer_heap=15_000_000, writer_threads=1)
    else:
        url = os.environ.get("HUB_MEILI_URL")
        if not url:
            pytest.skip(MEILI_SKIP)
        ix = await MeiliIndex.open(url, os.environ.get("HUB_MEILI_KEY") or None,
                                   uid=f"test_{uuid.uuid4().hex[:12]}")
    try:
        yield ix
    finally:
        if isinstance(ix, MeiliIndex):
            await ix.drop()
        await ix.close()
