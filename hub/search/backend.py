"""Which search engine this hub uses: embedded tantivy by default, Meilisearch when set.

Tantivy allows one writer per directory, so only one hub process can own
``HUB_DATA_DIR/index``; a second one gets :class:`IndexUnavailableError` and runs without
search (logged clearly). Several hub processes need ``HUB_MEILI_URL``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from hub.settings import Settings
from recorder.search import MeiliIndex, SearchIndex, TantivyIndex

log = logging.getLogger(__name__)


def index_dir(settings: Settings) -> Path:
    return settings.data_dir / "index"


def backend_name(settings: Settings) -> str:
    return "meilisearch" if settings.meili_url else "tantivy"


async def open_index(settings: Settings) -> SearchIndex:
    """Open the configured engine. Raises :class:`IndexUnavailableError` (locked or
    unreachable) or :class:`SchemaMismatchError` (tantivy dir of another version)."""
    if settings.meili_url:
        return await MeiliIndex.open(settings.meili_url, settings.meili_key or None)
    path = index_dir(settings)
    return await asyncio.to_thread(TantivyIndex.open, path)
