"""The embedded search index: tantivy in-process, persisted under one directory.

Theory of operation: one :class:`tantivy.IndexWriter` lives as long as the index (tantivy
allows a single writer per directory, enforced by a lock file, so this backend serves exactly
one hub process; multi-process deployments use Meilisearch). Writes are staged in the writer's
memory and become durable and searchable together at :meth:`TantivyIndex.commit`, which also
reloads the reader, so a search issued after ``commit()`` returns sees the change.

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

A query is: the user text (rebuilt from :func:`recorder.search.text.parse_text`, every term
required) AND each filter AND the visibility restriction, with filters wrapped in constant-score
queries so they restrict without changing relevance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tantivy

from recorder.search.errors import IndexUnavailableError, InvalidQueryError, SchemaMismatchError
from recorder.search.paging import (
    Cursor,
    decode_cursor,
    effective_sort,
    key_bound,
    next_cursor,
)
from recorder.search.tantivy_schema import (
    PAIR_FIELD,
    SCHEMA_VERSION,
    TEXT_FIELDS,
    build_schema,
    from_tantivy,
    to_tantivy,
)
from recorder.search.tantivy_snapshot import KeyRange, Snapshot
from recorder.search.tantivy_terms import analyze_word, common_pairs, phrase_pair
from recorder.search.text import Clause, parse_text, positive, render_ranges
from recorder.search.types import (
    SearchDoc,
    SearchHit,
    SearchQuery,
    SearchResult,
    Sort,
    facet_counts,
    utc_ms,
)

log = logging.getLogger(__name__)

_MARKER = "contacthub-index.json"
_SNIPPET_CHARS = 200
_Occur = tantivy.Occur


@dataclass(frozen=True, slots=True)
class _Plan:
    """A query translated for tantivy: ``base`` selects every match (totals, facets),
    ``page_q`` the rest after the cursor, read from ``offset``. When the query is one word
    or one two-word phrase without filters or restriction, ``word`` is its indexed term or
    ``pair`` its pair term, and ``exact_q`` selects the same documents without reading
    positions (see the snapshot)."""

    query: SearchQuery
    sort: Sort
    prev: Cursor | None
    text_q: tantivy.Query | None
    base: tantivy.Query
    page_q: tantivy.Query
    offset: int
    word: str | None
    pair: str | None
    exact_q: tantivy.Query | None


class TantivyIndex:
    """:class:`~recorder.search.protocol.SearchIndex` on an embedded tantivy index."""

    def __init__(self, index: tantivy.Index, schema: tantivy.Schema, writer_heap: int,
                 writer_threads: int) -> None:
        # The exact common-word shortcuts; off only to measure or test the plain path.
        self.shortcuts = True
        self._index = index
        self._schema = schema
        self._lock = threading.Lock()
        self._snap = Snapshot(index.searcher(), schema)
        self._keys = _key_range(self._snap)
        try:
            self._writer: tantivy.IndexWriter | None = index.writer(writer_heap, writer_threads)
        except ValueError as exc:  # tantivy reports the lock file as ValueError
            raise IndexUnavailableError(
                f"cannot open the index writer (another process holds the index?): {exc}"
            ) from exc

    @classmethod
    def open(cls, directory: Path | None, *, writer_heap: int = 128_000_000,
             writer_threads: int = 0) -> TantivyIndex:
        """Open or create the index in ``directory`` (``None``: in memory, for tests).

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
        opened = cls(index, schema, writer_heap, writer_threads)
        log.info("search index opened at %s with %d docs", directory, opened._snap.num_docs)
        return opened

    # ---- writes -------------------------------------------------------------------------

    def _require_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            raise IndexUnavailableError("index is closed")
        return self._writer

    def _upsert_sync(self, docs: list[SearchDoc], replace_existing: bool) -> None:
        with self._lock:
            writer = self._require_writer()
            for doc in docs:
                if replace_existing:
                    writer.delete_documents_by_term("id", doc.id)
                writer.add_document(to_tantivy(doc, self._schema))
            if docs:  # widen the known key range (only ever a hint for time windows)
                low = key_bound(utc_ms(min(d.at for d in docs)))
                high = key_bound(utc_ms(max(d.at for d in docs)) + 1) - 1
                if self._keys is not None:
                    low, high = min(low, self._keys.low), max(high, self._keys.high)
                self._keys = KeyRange(low, high)

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

    def _text_query(self, clauses: tuple[Clause, ...]) -> tantivy.Query | None:
        if not clauses:
            return None
        parts = [("-" if c.negated else "") + '"' + c.text + '"' for c in clauses]
        if not positive(clauses):
            parts.insert(0, "*")
        try:
            return self._index.parse_query(
                " ".join(parts), list(TEXT_FIELDS), field_boosts={"subject": 2.0},
                conjunction_by_default=True)
        except ValueError as exc:
            raise InvalidQueryError("text", "cannot be parsed") from exc

    def _terms(self, field: str, values: Iterable[str]) -> tantivy.Query:
        return tantivy.Query.term_set_query(self._schema, field, sorted(values))

    def _range(self, field: str, kind: tantivy.FieldType, lower: Any, upper: Any,
               include_upper: bool = True) -> tantivy.Query:
        return tantivy.Query.range_query(self._schema, field, kind, lower, upper,
                                         include_upper=include_upper)

    def _filters(self, query: SearchQuery) -> list[tantivy.Query]:
        f = query.filters
        out: list[tantivy.Query] = []
        for field, values in (("channel", f.channels), ("queue", f.queues),
                              ("agent", f.agents), ("contact_id", f.contacts),
                              ("conversation_id", f.conversations),
                              ("direction", f.directions), ("kind", f.kinds)):
            if values:
                out.append(self._terms(field, values))
        if f.at_from is not None or f.at_to is not None:
            lower = key_bound(utc_ms(f.at_from)) if f.at_from else -(2**62)
            upper = key_bound(utc_ms(f.at_to)) if f.at_to else 2**62
            out.append(self._range("sort_key", tantivy.FieldType.Integer, lower, upper, False))
        if f.has_recording is not None:
            out.append(tantivy.Query.term_query(self._schema, "has_recording", f.has_recording))
        if f.qa_min is not None or f.qa_max is not None:
            lower_qa = f.qa_min if f.qa_min is not None else float("-inf")
            upper_qa = f.qa_max if f.qa_max is not None else float("inf")
            out.append(self._range("qa_score", tantivy.FieldType.Float, lower_qa, upper_qa))
        v = query.visibility
        if not v.unrestricted:
            grants = [self._terms(name, values) for name, values in
                      (("queue", v.queues), ("agent", v.agents)) if values]
            out.append(tantivy.Query.boolean_query([(_Occur.Should, g) for g in grants])
                       if grants else tantivy.Query.empty_query())
        return out

    @staticmethod
    def _all(queries: list[tantivy.Query]) -> tantivy.Query:
        if not queries:
            return tantivy.Query.all_query()
        if len(queries) == 1:
            return queries[0]
        return tantivy.Query.boolean_query([(_Occur.Must, q) for q in queries])

    def _plan(self, query: SearchQuery) -> _Plan:
        """Build the tantivy queries (fast, no index access; raises on a bad query)."""
        clauses = parse_text(query.text)
        text_q = self._text_query(clauses)
        sort = effective_sort(query, text_q is not None and positive(clauses))
        prev = decode_cursor(query)
        restrictions = self._filters(query)
        filters = [tantivy.Query.const_score_query(q, 0.0) for q in restrictions]
        if self.shortcuts:
            filters += self._pair_filters(clauses)
        base = self._all(([text_q] if text_q is not None else []) + filters)
        word = pair = None
        exact_q = text_q
        if self.shortcuts and len(clauses) == 1 and not clauses[0].negated and not restrictions:
            word = analyze_word(clauses[0].text)
            pair = None if word is not None else phrase_pair(clauses[0].text)
            if pair is not None:
                exact_q = tantivy.Query.term_query(self._schema, PAIR_FIELD, pair)
                if sort is not Sort.RELEVANCE:
                    base = exact_q  # the same documents; time order needs no phrase scores
        page_q, offset = base, 0
        if prev is not None and sort is Sort.RELEVANCE:
            offset = prev.seen
        elif prev is not None:
            if prev.key is None:
                raise InvalidQueryError("cursor", "belongs to a different sort")
            lower, upper = ((prev.key, 2**62) if sort is Sort.TIME_ASC else (-(2**62), prev.key))
            keyset = self._range("sort_key", tantivy.FieldType.Integer, lower, upper)
            page_q, offset = self._all([base, keyset]), prev.skip
        return _Plan(query, sort, prev, text_q, base, page_q, offset, word, pair,
                     exact_q if word is not None or pair is not None else None)

    def _pair_filters(self, clauses: tuple[Clause, ...]) -> list[tantivy.Query]:
        """A document matching a phrase holds each indexed pair of its words, so requiring
        the pair terms (constant score 0) changes neither the matches nor the scores, and the
        phrase reads positions of real matches only."""
        terms = {p for c in clauses if not c.negated for p in common_pairs(c.text)}
        return [tantivy.Query.const_score_query(
                    tantivy.Query.term_query(self._schema, PAIR_FIELD, t), 0.0)
                for t in sorted(terms)]

    def _page_sync(self, snap: Snapshot, plan: _Plan) -> SearchResult:
        query, sort, prev = plan.query, plan.sort, plan.prev
        searcher = snap.searcher
        order = tantivy.Order.Asc if sort is Sort.TIME_ASC else tantivy.Order.Desc
        known = (snap.term_total(plan.word) if plan.word is not None else
                 snap.pair_total(plan.pair) if plan.pair is not None else None)
        raw: list[tuple[Any, tantivy.DocAddress]] | None = None
        if known is not None and sort is not Sort.RELEVANCE:
            raw = snap.time_window(plan.base, limit=query.limit, offset=plan.offset,
                                   total=known, ascending=sort is Sort.TIME_ASC,
                                   bound=None if prev is None else prev.key, keys=self._keys)
        if raw is None:
            field = None if sort is Sort.RELEVANCE else "sort_key"
            found = searcher.search(plan.page_q, query.limit, count=known is None,
                                    order_by_field=field, offset=plan.offset, order=order)
            raw = list(found.hits)
        if known is not None:
            total = known
        else:
            matched = int(found.count or 0)  # type: ignore[attr-defined]  # missing in stub
            total = matched if prev is None or sort is Sort.RELEVANCE else (
                prev.seen + matched - prev.skip)
        hits, keys = self._hits(searcher, raw, sort, plan.text_q if query.highlight else None)
        return SearchResult(
            hits=tuple(hits), total=total, total_exact=True, facets=MappingProxyType({}),
            next_cursor=next_cursor(query, sort, prev, len(hits), keys, total))

    def _hits(self, searcher: tantivy.Searcher, raw: list[tuple[Any, tantivy.DocAddress]],
              sort: Sort, text_q: tantivy.Query | None) -> tuple[list[SearchHit], list[int]]:
        generators: dict[str, tantivy.SnippetGenerator] = {}
        if text_q is not None and raw:
            for name in TEXT_FIELDS:
                gen = tantivy.SnippetGenerator.create(searcher, text_q, self._schema, name)
                gen.set_max_num_chars(_SNIPPET_CHARS)
                generators[name] = gen
        hits: list[SearchHit] = []
        keys: list[int] = []
        for value, address in raw:
            stored = searcher.doc(address)
            highlights: dict[str, str] = {}
            for name, gen in generators.items():
                full = str(stored.get_first(name) or "")
                if not full:  # nothing to highlight (most docs have no subject): skip the work
                    continue
                snippet = gen.snippet_from_doc(stored)
                ranges = [(r.start, r.end) for r in snippet.highlighted()]
                if not ranges:
                    continue
                span = snippet.fragment_range()
                if len(full) <= _SNIPPET_CHARS:  # short field: show it whole, punctuation too
                    shifted = [(a + span.start, b + span.start) for a, b in ranges]
                    highlights[name] = render_ranges(full.encode(), shifted, before=False,
                                                     after=False)
                    continue
                highlights[name] = render_ranges(
                    snippet.fragment().encode(), ranges, before=span.start > 0,
                    after=span.end < len(full.encode()))
            score = float(value) if sort is Sort.RELEVANCE else None
            if sort is not Sort.RELEVANCE:
                keys.append(int(value))
            hits.append(SearchHit(from_tantivy(stored), score, MappingProxyType(highlights)))
        return hits, keys

    def _facets(self, snap: Snapshot, plan: _Plan) -> dict[str, Mapping[str, int]]:
        query = plan.query
        term = plan.word if plan.word is not None else plan.pair
        if (term is not None and plan.exact_q is not None
                and snap.is_common(term, pair=plan.pair is not None)):
            counted = snap.complement_facets(plan.exact_q, query.facets)
            if counted is not None:
                return {name: facet_counts(pairs, query.facet_size)
                        for name, pairs in sorted(counted.items())}
        request = {name: {"terms": {"field": name, "size": query.facet_size}}
                   for name in sorted(query.facets)}
        target = plan.exact_q if plan.exact_q is not None else plan.base
        answer = snap.searcher.aggregate(target, request)
        out: dict[str, Mapping[str, int]] = {}
        for name in sorted(query.facets):
            buckets = answer.get(name, {}).get("buckets", [])
            out[name] = facet_counts(((str(b["key"]), int(b["doc_count"])) for b in buckets),
                                     query.facet_size)
        return out

    async def search(self, query: SearchQuery) -> SearchResult:
        """Hits and facet counts are computed in two threads at once, on one snapshot."""
        plan = self._plan(query)
        snap = self._snap
        if not query.facets:
            return await asyncio.to_thread(self._page_sync, snap, plan)
        page, facets = await asyncio.gather(
            asyncio.to_thread(self._page_sync, snap, plan),
            asyncio.to_thread(self._facets, snap, plan))
        return replace(page, facets=MappingProxyType(facets))


def _key_range(snap: Snapshot) -> KeyRange | None:
    """The time-key bounds of an opened index (one pass over the key column, at open)."""
    if snap.num_docs == 0:
        return None
    answer = snap.searcher.aggregate(tantivy.Query.all_query(), {
        "low": {"min": {"field": "sort_key"}}, "high": {"max": {"field": "sort_key"}}})
    low, high = answer["low"]["value"], answer["high"]["value"]
    if low is None or high is None:
        return None
    return KeyRange(int(low), int(high))

