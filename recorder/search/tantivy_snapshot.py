"""One committed state of the tantivy index and the exact shortcuts it allows.

Why this exists: tantivy-py collects every hit through a ``MultiCollector`` (no block-max
pruning, no count-only fast path), so a query costs a few nanoseconds per *matching* document.
For a very common word (in ~95% of a million docs) that is most of the time budget, three times
over: once for the page, once for the exact total, once per facet field. A :class:`Snapshot`
pins one searcher (the state between two commits) and answers, *exactly*, with less work:

- ``term_total``: the total of a one-word query from document frequencies (``|subject| +
  |text| - |both|``), valid only while the snapshot has no deleted documents (doc frequencies
  count deleted docs until a merge drops them); otherwise ``None`` and the caller counts.
  ``pair_total``: the same for a two-word phrase, one lookup in the ``pairs`` field.
- ``all_facets``: facet counts of the whole index (per field, every value), computed once per
  snapshot; ``facets(word) = facets(all) - facets(not word)``, and "not word" is the rare side.
- ``time_window``: time-ordered pages of a common word read from a key window just below the
  newest key (or the cursor's), sized from the total and where the keys are (a per-bucket
  count, :mod:`recorder.search.tantivy_keys`, so an empty stretch of time does not fool it),
  widened until it holds the page; the documents outside a window that holds the page are all
  older, so the page is the same.

A commit makes a new snapshot, so every cache here is per generation by construction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import tantivy

from recorder.search.tantivy_keys import KeySpread
from recorder.search.tantivy_schema import PAIR_FIELD
from recorder.search.tantivy_terms import analyze_word
from recorder.search.types import DIRECTIONS

__all__ = ["KeySpread", "Snapshot", "analyze_word"]

ALL_VALUES = 65_536  # terms-aggregation size meaning "every value" (checked, never assumed)
COMMON_SHARE = 0.5  # a word in more docs than this counts facets from its complement
WINDOW_MIN_DOCS = 50_000  # below this a plain time-ordered search is already fast
WINDOW_PAGES = 4  # a first window holds about this many pages of matches
WINDOW_GROWTH = 8


class Snapshot:
    """A pinned searcher plus per-generation facts and caches (see module docstring)."""

    def __init__(self, searcher: tantivy.Searcher, schema: tantivy.Schema) -> None:
        self.searcher = searcher
        self.schema = schema
        self.num_docs = int(searcher.num_docs)
        # Every doc has exactly one direction, so these doc frequencies sum to the docs
        # *including* deleted ones: equal to the live count means nothing is deleted.
        stored = sum(int(searcher.doc_freq("direction", d)) for d in DIRECTIONS)
        self.live_only = stored == self.num_docs
        self._lock = threading.Lock()
        self._facets: dict[str, Mapping[str, int] | None] = {}

    # ---- totals ------------------------------------------------------------------------

    def doc_freqs(self, term: str) -> tuple[int, int]:
        """Docs containing ``term`` in ``subject`` and in ``text`` (deleted ones included)."""
        return (int(self.searcher.doc_freq("subject", term)),
                int(self.searcher.doc_freq("text", term)))

    def is_common(self, term: str, *, pair: bool = False) -> bool:
        """Whether ``term`` (a word, or a pair term) is in more than half of the docs."""
        most = (int(self.searcher.doc_freq(PAIR_FIELD, term)) if pair
                else max(self.doc_freqs(term)))
        return self.num_docs > 0 and most > COMMON_SHARE * self.num_docs

    def pair_total(self, term: str) -> int | None:
        """Exact count of docs with the pair ``term`` (the two-word phrase in subject or
        text), or ``None`` if the snapshot has deletions."""
        return int(self.searcher.doc_freq(PAIR_FIELD, term)) if self.live_only else None

    def term_total(self, term: str) -> int | None:
        """Exact count of docs with ``term`` in subject or text, or ``None`` if the snapshot
        has deletions (then doc frequencies overcount)."""
        if not self.live_only:
            return None
        in_subject, in_text = self.doc_freqs(term)
        if not in_subject or not in_text:
            return in_subject + in_text
        both = tantivy.Query.boolean_query([
            (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "subject", term)),
            (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "text", term)),
        ])  # a conjunction walks the rarer list: cheap next to counting the union
        found = self.searcher.search(both, 1, count=True)
        return in_subject + in_text - int(found.count or 0)  # type: ignore[attr-defined]

    # ---- facets ------------------------------------------------------------------------

    def _terms(self, query: tantivy.Query, fields: Iterable[str]) -> dict[str, dict[str, int]]:
        """Every value's count per field, or a field missing if it has too many values."""
        request = {name: {"terms": {"field": name, "size": ALL_VALUES,
                                    "segment_size": ALL_VALUES}} for name in fields}
        if not request:
            return {}
        answer: dict[str, Any] = self.searcher.aggregate(query, request)
        out: dict[str, dict[str, int]] = {}
        for name in request:
            agg = answer.get(name, {})
            if agg.get("sum_other_doc_count", 0) or agg.get("doc_count_error_upper_bound", 0):
                continue  # truncated: not exact, the caller falls back
            out[name] = {str(b["key"]): int(b["doc_count"]) for b in agg.get("buckets", [])}
        return out

    def all_facets(self, fields: Iterable[str]) -> dict[str, Mapping[str, int]] | None:
        """Counts of every value of each field over the whole snapshot (cached), or ``None``
        if one field cannot be counted exactly."""
        wanted = sorted(fields)
        with self._lock:
            missing = [f for f in wanted if f not in self._facets]
            if missing and self.live_only:  # the term dictionary has the exact counts
                for name in missing:
                    self._facets[name] = {str(t): int(n) for t, n in
                                          self.searcher.terms_with_prefix(name, "")}
            elif missing:
                counted = self._terms(tantivy.Query.all_query(), missing)
                for name in missing:
                    self._facets[name] = counted.get(name)
            out: dict[str, Mapping[str, int]] = {}
            for name in wanted:
                counts = self._facets[name]
                if counts is None:
                    return None
                out[name] = counts
            return out

    def complement_facets(self, text_q: tantivy.Query,
                          fields: Iterable[str]) -> dict[str, list[tuple[str, int]]] | None:
        """Exact facet counts of ``text_q`` over the whole snapshot as ``all - not text_q``,
        or ``None`` if a field has too many values to count exactly."""
        wanted = sorted(fields)
        everything = self.all_facets(wanted)
        if everything is None:
            return None
        rest = tantivy.Query.boolean_query([(tantivy.Occur.Must, tantivy.Query.all_query()),
                                            (tantivy.Occur.MustNot, text_q)])
        others = self._terms(rest, wanted)
        if len(others) != len(wanted):
            return None
        return {name: [(value, n - others[name].get(value, 0))
                       for value, n in everything[name].items()] for name in wanted}

    # ---- time order --------------------------------------------------------------------

    def time_window(self, base: tantivy.Query, *, limit: int, offset: int, total: int,
                    ascending: bool, bound: int | None,
                    keys: KeySpread | None) -> list[tuple[Any, tantivy.DocAddress]] | None:
        """The page of ``base`` in time order (``bound``: the cursor key, inclusive) read from
        a window of keys next to where the page starts, or ``None`` when windows do not pay
        (small index, no key counts) or would have to hold every key left (the caller runs
        the full query).

        The window holds about four pages' worth of matches, assuming ``base`` matches the
        same share of documents everywhere in time, counted from where the keys really are
        (so a gap with no documents costs nothing); it grows eightfold while it does not fill
        the page (the word is rarer there, or the counts include deleted documents).
        """
        if keys is None or self.num_docs < WINDOW_MIN_DOCS or total <= 0:
            return None
        start = (keys.low if ascending else keys.high) if bound is None else bound
        wanted = WINDOW_PAGES * (limit + offset) * self.num_docs / total  # staged docs
        order = tantivy.Order.Asc if ascending else tantivy.Order.Desc
        while True:  # ends: the edge moves out by at least a key per try, or is None
            edge = keys.edge(start, wanted, ascending=ascending)
            if edge is None:
                return None  # the window would hold everything left: no gain
            lower, upper = (start, edge) if ascending else (edge, start)
            window = tantivy.Query.range_query(self.schema, "sort_key",
                                               tantivy.FieldType.Integer, lower, upper)
            query = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, base),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(window, 0.0)),
            ])
            found = self.searcher.search(query, limit, count=False, order_by_field="sort_key",
                                         offset=offset, order=order)
            if len(found.hits) == limit:
                return list(found.hits)
            wanted *= WINDOW_GROWTH
