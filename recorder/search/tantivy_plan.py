"""A :class:`~recorder.search.types.SearchQuery` translated into tantivy queries.

A query is: the user text (rebuilt from :func:`recorder.search.text.parse_text`, every term
required) AND each filter AND the visibility restriction, with filters wrapped in constant-score
queries so they restrict without changing relevance. With the shortcuts on, every phrase also
requires its indexed common-word pairs (constant score 0), so the phrase check, which reads
positions, runs on real matches only; and a query of one word or one two-common-word phrase
without filters names its indexed term, which the snapshot's exact shortcuts look up.

Planning never touches the index (microseconds), so it runs on the event loop and a bad query
fails before any thread is started.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tantivy

from recorder.search.errors import InvalidQueryError
from recorder.search.paging import Cursor, decode_cursor, effective_sort, key_bound
from recorder.search.tantivy_schema import PAIR_FIELD, TEXT_FIELDS
from recorder.search.tantivy_terms import analyze_word, common_pairs, phrase_pair
from recorder.search.text import Clause, parse_text, positive
from recorder.search.types import SearchQuery, Sort, utc_ms

_Occur = tantivy.Occur


@dataclass(frozen=True, slots=True)
class Plan:
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


class Planner:
    """Builds :class:`Plan` objects for one index (its query parser and schema)."""

    def __init__(self, index: tantivy.Index, schema: tantivy.Schema) -> None:
        self._index = index
        self._schema = schema

    def plan(self, query: SearchQuery, *, shortcuts: bool) -> Plan:
        """Build the tantivy queries (raises :class:`InvalidQueryError` on a bad query)."""
        clauses = parse_text(query.text)
        text_q = self._text_query(clauses)
        sort = effective_sort(query, text_q is not None and positive(clauses))
        prev = decode_cursor(query)
        restrictions = self._filters(query)
        filters = [tantivy.Query.const_score_query(q, 0.0) for q in restrictions]
        if shortcuts:
            filters += self._pair_filters(clauses)
        base = _all(([text_q] if text_q is not None else []) + filters)
        word = pair = None
        exact_q = text_q
        if shortcuts and len(clauses) == 1 and not clauses[0].negated and not restrictions:
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
            page_q, offset = _all([base, keyset]), prev.skip
        return Plan(query, sort, prev, text_q, base, page_q, offset, word, pair,
                    exact_q if word is not None or pair is not None else None)

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
        labels = (("channel", f.channels), ("queue", f.queues), ("agent", f.agents),
                  ("contact_id", f.contacts), ("conversation_id", f.conversations),
                  ("direction", f.directions), ("kind", f.kinds))
        out = [self._terms(field, values) for field, values in labels if values]
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

    def _pair_filters(self, clauses: tuple[Clause, ...]) -> list[tantivy.Query]:
        """A document matching a phrase holds each indexed pair of its words, so requiring
        the pair terms (constant score 0) changes neither the matches nor the scores, and the
        phrase reads positions of real matches only."""
        terms = {p for c in clauses if not c.negated for p in common_pairs(c.text)}
        return [tantivy.Query.const_score_query(
                    tantivy.Query.term_query(self._schema, PAIR_FIELD, t), 0.0)
                for t in sorted(terms)]


def _all(queries: list[tantivy.Query]) -> tantivy.Query:
    if not queries:
        return tantivy.Query.all_query()
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(_Occur.Must, q) for q in queries])
