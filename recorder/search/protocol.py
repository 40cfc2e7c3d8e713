"""The one interface the hub programs against, whatever engine is behind it.

Durability contract (what makes the hub's outbox safe): ``upsert``/``delete*`` only stage
changes; they are durable and visible to ``search`` once ``commit()`` returns. The hub's outbox
drainer therefore does ``upsert(batch)`` -> ``commit()`` -> mark the outbox rows done. A crash
before the commit loses nothing: the rows are still pending and are replayed, and replays are
harmless because ``upsert`` is idempotent (keyed by interaction id) and deletes of absent ids are
no-ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from recorder.search.types import SearchDoc, SearchQuery, SearchResult


@runtime_checkable
class SearchIndex(Protocol):
    """A full-text index of interactions with filters, facets, highlights and cursors."""

    async def upsert(self, docs: Iterable[SearchDoc]) -> None:
        """Stage inserts or replacements (by ``id``). Later docs win within one call."""

    async def bulk_insert(self, docs: Iterable[SearchDoc]) -> None:
        """Stage docs known to be absent (reindex into a cleared index): skips the per-doc
        delete, so it is the fast path; a duplicate id would be indexed twice."""

    async def delete(self, ids: Iterable[str]) -> None:
        """Stage removal of these interaction ids (absent ids are ignored)."""

    async def delete_by_contact(self, contact_id: str) -> None:
        """Stage removal of everything of one contact (data-protection purge)."""

    async def clear(self) -> None:
        """Remove every document, committed on return (before a full reindex)."""

    async def commit(self) -> None:
        """Make every staged change durable and searchable before returning."""

    async def search(self, query: SearchQuery) -> SearchResult:
        """Run ``query`` against the last committed state."""

    async def count(self) -> int:
        """Committed documents in the index."""

    async def close(self) -> None:
        """Release the engine (writer lock, threads, connections). Uncommitted changes are lost."""
