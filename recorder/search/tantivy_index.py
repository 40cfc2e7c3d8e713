"""The embedded search index: tantivy in-process, persisted under one directory.

Theory of operation: one :class:`tantivy.IndexWriter` lives as long as the index (tantivy
allows a single writer per directory, enforced by a lock file, so this backend serves exactly
one hub deployment; multi-process deployments use Meilisearch). Writes are staged in the
writer's memory and become durable and searchable together at :meth:`TantivyIndex.commit`,
which also reloads the reader, so a search issued after ``commit()`` returns sees the change.
An index opened with ``writer=False`` only reads: the hub opens it that way when its index
worker process owns the writer, and :meth:`TantivyIndex.refresh` picks up that process's
commits (segment files a merge deletes stay readable through the reader's open maps).

Every tantivy call that touches the index blocks, so it runs in a worker thread
(``asyncio.to_thread``; only query building, microseconds, runs on the event loop). A lock
serializes writer use, while searches run concurrently against the committed
:class:`~recorder.search.tantivy_snapshot.Snapshot` (replaced at each commit); a search with
facets computes hits and facet counts in two threads on the same snapshot. Tantivy releases
the GIL while it searches and indexes. A one-word query without filters (the expensive
"very common word" case) takes the snapshot's exact shortcuts: total from document
frequencies, facets from the word's complement, time order from a key window. A phrase of
two common words takes the same shortcuts through its term in the ``pairs`` field, and every
phrase requires its indexed pairs as a constant-score filter, so the phrase check (which reads
positions) runs on real matches only instead of every document holding all its words.

Query planning lives in :mod:`recorder.search.tantivy_plan`, running a plan (pages, hits,
highlights, facets) in :mod:`recorder.search.tantivy_results`, the schema and document mapping
in :mod:`recorder.search.tantivy_schema`, the key counts that size time windows (counted at
open, updated by every write) in :mod:`recorder.search.tantivy_keys`.

Bulk indexing (``reindex``) is bound by the thread that turns :class:`SearchDoc` values into
tantivy documents (Python, holding the GIL) next to tantivy's own indexing threads (Rust, not
holding it): :func:`~recorder.search.tantivy_schema.to_tantivy` and the pair terms are kept to
C-level string work per word for that reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import tantivy

from recorder.search import tantivy_keys, tantivy_results
from recorder.search.errors import IndexUnavailableError, SchemaMismatchError
from recorder.search.paging import key_bound
from recorder.search.tantivy_plan import Planner
from recorder.search.tantivy_schema import SCHEMA_VERSION, build_schema, to_tantivy
from recorder.search.tantivy_snapshot import Snapshot
from recorder.search.types import SearchDoc, SearchQuery, SearchResult, utc_ms

log = logging.getLogger(__name__)

_MARKER = "contacthub-index.json"


class TantivyIndex:
    """:class:`~recorder.search.protocol.SearchIndex` on an embedded tantivy index."""

    def __init__(self, index: tantivy.Index, schema: tantivy.Schema, writer_heap: int,
                 writer_threads: int, *, writer: bool = True) -> None:
        # The exact common-word shortcuts; off only to measure or test the plain path.
        self.shortcuts = True
        self._index = index
        self._schema = schema
        self._planner = Planner(index, schema)
        self._lock = threading.Lock()
        self._snap = Snapshot(index.searcher(), schema)
        self._keys = tantivy_keys.from_searcher(self._snap.searcher)
        self._writer: tantivy.IndexWriter | None = None
        self.read_only = not writer
        if self.read_only:
            return
        try:
            self._writer = index.writer(writer_heap, writer_threads)
        except ValueError as exc:  # tantivy reports the lock file as ValueError
            raise IndexUnavailableError(
                f"cannot open the index writer (another process holds the index?): {exc}"
            ) from exc

    @classmethod
    def open(cls, directory: Path | None, *, writer_heap: int = 128_000_000,
             writer_threads: int = 0, writer: bool = True) -> TantivyIndex:
        """Open or create the index in ``directory`` (``None``: in memory, for tests).

        ``writer=False`` opens a reader only (no lock taken): another process writes the
        index and tells this one when to :meth:`refresh`.

        Raises :class:`SchemaMismatchError` if the directory holds an index of another schema
        version: delete the directory and rebuild it with ``reindex``.
        """
        schema = build_schema()
        if directory is None:
            return cls(tantivy.Index(schema), schema, writer_heap, writer_threads)
        directory.mkdir(parents=True, exist_ok=True)
        marker = directory / _MARKER
        if marker.exists():
            version = json.loads(marker.read_text()).get("schema_version")
            if version != SCHEMA_VERSION:
                raise SchemaMismatchError(
                    f"index at {directory} has schema {version}, need {SCHEMA_VERSION}")
        elif any(directory.iterdir()):
            raise SchemaMismatchError(f"{directory} is not empty and holds no contacthub index")
        else:
            marker.write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
        index = tantivy.Index(schema, path=str(directory), reuse=True)
        opened = cls(index, schema, writer_heap, writer_threads, writer=writer)
        log.info("search index opened at %s with %d docs%s", directory, opened._snap.num_docs,
                 " (read only)" if opened.read_only else "")
        return opened

    # ---- writes -------------------------------------------------------------------------

    def _require_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            raise IndexUnavailableError(
                "index is open read only" if self.read_only else "index is closed")
        return self._writer

    @property
    def key_spread(self) -> tantivy_keys.KeySpread | None:
        """The time keys' spread as this process knows it (the writer hands it to readers)."""
        return self._keys

    def _refresh_sync(self, spread: tantivy_keys.KeySpread | None) -> None:
        try:
            self._index.reload()
            snap = Snapshot(self._index.searcher(), self._schema)
        except (ValueError, OSError) as exc:  # e.g. a segment merged away while reading meta
            raise IndexUnavailableError(f"reloading the index failed: {exc}") from exc
        self._snap, self._keys = snap, spread

    async def refresh(self, spread: tantivy_keys.KeySpread | None) -> None:
        """See what another process committed; ``spread`` is its key spread (a hint)."""
        await asyncio.to_thread(self._refresh_sync, spread)

    def _upsert_sync(self, docs: list[SearchDoc], replace_existing: bool) -> None:
        with self._lock:
            writer = self._require_writer()
            for doc in docs:
                if replace_existing:
                    writer.delete_documents_by_term("id", doc.id)
                writer.add_document(to_tantivy(doc))
            if docs:  # count the new keys (only ever a hint for time windows)
                low = key_bound(utc_ms(min(d.at for d in docs)))
                high = key_bound(utc_ms(max(d.at for d in docs)) + 1) - 1
                buckets = tantivy_keys.count_buckets(d.at for d in docs)
                self._keys = tantivy_keys.plus(self._keys, low, high, buckets)

    async def upsert(self, docs: Iterable[SearchDoc]) -> None:
        await asyncio.to_thread(self._upsert_sync, list(docs), True)

    async def bulk_insert(self, docs: Iterable[SearchDoc]) -> None:
        await asyncio.to_thread(self._upsert_sync, list(docs), False)

    def _delete_sync(self, field: str, values: list[str]) -> None:
        with self._lock:
            writer = self._require_writer()
            for value in values:
                writer.delete_documents_by_term(field, value)

    async def delete(self, ids: Iterable[str]) -> None:
        await asyncio.to_thread(self._delete_sync, "id", list(ids))

    async def delete_by_contact(self, contact_id: str) -> None:
        await asyncio.to_thread(self._delete_sync, "contact_id", [contact_id])

    def _commit_sync(self) -> None:
        with self._lock:
            try:
                self._require_writer().commit()
                self._index.reload()
                self._snap = Snapshot(self._index.searcher(), self._schema)
            except (ValueError, OSError) as exc:  # e.g. disk full: the outbox will retry
                log.error("search index commit failed: %s", exc)
                raise IndexUnavailableError(f"commit failed: {exc}") from exc

    async def commit(self) -> None:
        await asyncio.to_thread(self._commit_sync)

    def _clear_sync(self) -> None:
        with self._lock:
            writer = self._require_writer()
            writer.delete_all_documents()
            writer.commit()
            self._index.reload()
            self._snap = Snapshot(self._index.searcher(), self._schema)
            self._keys = None

    async def clear(self) -> None:
        await asyncio.to_thread(self._clear_sync)

    async def count(self) -> int:
        return self._snap.num_docs

    def _close_sync(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.rollback()
                writer.wait_merging_threads()

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)

    # ---- queries ------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchResult:
        """Hits and facet counts are computed in two threads at once, on one snapshot."""
        plan = self._planner.plan(query, shortcuts=self.shortcuts)
        snap, keys = self._snap, self._keys
        if not query.facets:
            return await asyncio.to_thread(tantivy_results.page, snap, plan, keys, self._schema)
        page, facets = await asyncio.gather(
            asyncio.to_thread(tantivy_results.page, snap, plan, keys, self._schema),
            asyncio.to_thread(tantivy_results.facets, snap, plan))
        return replace(page, facets=MappingProxyType(facets))

