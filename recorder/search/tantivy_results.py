"""Running a :class:`~recorder.search.tantivy_plan.Plan` on a snapshot: the page of hits (with
``<mark>`` highlights), its exact total and cursor, and the facet counts.

Both run in worker threads (tantivy releases the GIL while it searches) on one
:class:`~recorder.search.tantivy_snapshot.Snapshot`, and take its exact shortcuts where the
plan allows them: total from document frequencies, time order from a key window, facets from
the complement of a very common term.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import tantivy

from recorder.search.paging import next_cursor
from recorder.search.tantivy_keys import KeySpread
from recorder.search.tantivy_plan import Plan
from recorder.search.tantivy_schema import TEXT_FIELDS, from_tantivy
from recorder.search.tantivy_snapshot import Snapshot
from recorder.search.text import render_ranges
from recorder.search.types import SearchHit, SearchResult, Sort, facet_counts

_SNIPPET_CHARS = 200


def page(snap: Snapshot, plan: Plan, keys: KeySpread | None,
         schema: tantivy.Schema) -> SearchResult:
    """The page of hits of ``plan`` (facets empty; see :func:`facets`)."""
    query, sort, prev = plan.query, plan.sort, plan.prev
    searcher = snap.searcher
    order = tantivy.Order.Asc if sort is Sort.TIME_ASC else tantivy.Order.Desc
    known = (snap.term_total(plan.word) if plan.word is not None else
             snap.pair_total(plan.pair) if plan.pair is not None else None)
    raw: list[tuple[Any, tantivy.DocAddress]] | None = None
    if known is not None and sort is not Sort.RELEVANCE:
        raw = snap.time_window(plan.base, limit=query.limit, offset=plan.offset,
                               total=known, ascending=sort is Sort.TIME_ASC,
                               bound=None if prev is None else prev.key, keys=keys)
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
    hits, hit_keys = _hits(searcher, raw, sort, plan.text_q if query.highlight else None,
                           schema)
    return SearchResult(
        hits=tuple(hits), total=total, total_exact=True, facets=MappingProxyType({}),
        next_cursor=next_cursor(query, sort, prev, len(hits), hit_keys, total))


def _hits(searcher: tantivy.Searcher, raw: list[tuple[Any, tantivy.DocAddress]], sort: Sort,
          text_q: tantivy.Query | None,
          schema: tantivy.Schema) -> tuple[list[SearchHit], list[int]]:
    generators: dict[str, tantivy.SnippetGenerator] = {}
    if text_q is not None and raw:
        for name in TEXT_FIELDS:
            gen = tantivy.SnippetGenerator.create(searcher, text_q, schema, name)
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


def facets(snap: Snapshot, plan: Plan) -> dict[str, Mapping[str, int]]:
    """The facet counts of ``plan`` (the whole match set, not just the page)."""
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
