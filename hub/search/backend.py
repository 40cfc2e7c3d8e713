"""Which search engine this hub uses: embedded tantivy by default, Meilisearch when set.

Tantivy allows one writer per directory, so only one hub process can own
``HUB_DATA_DIR/index``; a second one gets :class:`IndexUnavailableError` and runs without
search (logged clearly). Several hub processes need ``HUB_MEILI_URL``. With
``HUB_SEARCH_WORKER`` the writer lives in the hub's index worker process
(:mod:`hub.search.index_worker`) and the hub only reads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

from hub.settings import Settings
from recorder.search import MeiliIndex, SearchIndex, TantivyIndex

log = logging.getLogger(__name__)


def index_dir(settings: Settings) -> Path:
    return settings.data_dir / "index"


def backend_name(settings: Settings) -> str:
    return "meilisearch" if settings.meili_url else "tantivy"


def uses_worker(settings: Settings) -> bool:
    """Whether the embedded index is written by the index worker process, the hub only
    reading it (Meilisearch is written over HTTP, from the hub's own indexer)."""
    return settings.search_worker and not settings.meili_url


async def open_index(settings: Settings, *, writer: bool = True) -> SearchIndex:
    """Open the configured engine; ``writer=False`` opens the embedded index read only.
    Raises :class:`IndexUnavailableError` (locked or unreachable) or
    :class:`SchemaMismatchError` (tantivy dir of another version)."""
    if settings.meili_url:
        return await MeiliIndex.open(settings.meili_url, settings.meili_key or None)
    path = index_dir(settings)
    return await asyncio.to_thread(functools.partial(TantivyIndex.open, path, writer=writer))
