"""Pure parts of search: value validation, query-text parsing, snippets, keys and cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.search import InvalidDocError, InvalidQueryError, SearchFilters, SearchQuery, Sort
from recorder.search.paging import Cursor, decode_cursor, fingerprint, next_cursor, sort_key
from recorder.search.text import parse_text, render_ranges, render_sentinels
from tests.recorder.conftest import make_doc


@pytest.mark.parametrize(("override", "field"), [
    ({"id": "ix 1"}, "id"), ({"id": ""}, "id"), ({"contact_id": "ct/../x"}, "contact_id"),
    ({"channel": "pigeon"}, "channel"), ({"direction": "sideways"}, "direction"),
    ({"kind": ""}, "kind"), ({"queue": ""}, "queue"),
    ({"at": datetime(2025, 1, 1)}, "at"), ({"qa_score": float("nan")}, "qa_score"),
])
def test_invalid_doc_names_the_field(override: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidDocError) as err:
        make_doc(1, **override)
    assert err.value.field == field
    assert err.value.as_data()["code"] == "search_invalid_doc"


def test_doc_time_is_normalized_to_utc() -> None:
    at = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert make_doc(1, at=at).at == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("build", "field"), [
    (lambda: SearchQuery(limit=0), "limit"),
    (lambda: SearchQuery(limit=1001), "limit"),
    (lambda: SearchQuery(facets=frozenset({"text"})), "facets"),
    (lambda: SearchFilters(channels=frozenset({"telex"})), "channels"),
    (lambda: SearchFilters(qa_min=5, qa_max=1), "qa_max"),
    (lambda: SearchFilters(at_from=datetime(2025, 1, 1)), "at_from"),
    (lambda: SearchFilters(at_from=datetime(2025, 2, 1, tzinfo=UTC),
                           at_to=datetime(2025, 1, 1, tzinfo=UTC)), "at_to"),
])
def test_invalid_query_names_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidQueryError) as err:
        build()  # type: ignore[operator]
    assert err.value.field == field


def test_parse_text_clauses() -> None:
    got = [(c.text, c.phrase, c.negated) for c in
           parse_text('refund  "late   delivery" -spam -"do not" "single" e-mail \\ "open end')]
    assert got == [("refund", False, False), ("late delivery", True, False),
                   ("spam", False, True), ("do not", True, True), ("single", False, False),
                   ("e-mail", False, False), ("open end", True, False)]
    assert parse_text('*:* -- "" ( )') == ()


@given(st.text(max_size=200))
def test_parse_text_never_fails_and_keeps_no_quotes(text: str) -> None:
    for clause in parse_text(text):
        assert '"' not in clause.text and "\\" not in clause.text
        assert clause.text == clause.text.strip() and clause.text


def test_render_ranges_escapes_everything_but_marks() -> None:
    frag = "a<b> & Köln süß".encode()
    start = frag.index("Köln".encode())
    out = render_ranges(frag, [(start, start + len("Köln".encode()))], before=True, after=True)
    assert out == "\u2026a&lt;b&gt; &amp; <mark>Köln</mark> süß\u2026"
    assert render_sentinels("x<\ue000y\ue001>", "\ue000", "\ue001") == "x&lt;<mark>y</mark>&gt;"


def test_sort_key_orders_by_time_and_fits_a_double() -> None:
    assert sort_key("ix_a", 1_000) < sort_key("ix_b", 1_001)
    far = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert sort_key("ix_zzzz", far) < 2**53


def test_cursor_round_trip_and_tampering() -> None:
    query = SearchQuery(text="x", sort=Sort.TIME_DESC, limit=2,
                        filters=SearchFilters(queues=frozenset({"b", "a"})))
    token = next_cursor(query, Sort.TIME_DESC, None, 2, [50, 40], total=10)
    assert token is not None
    resumed = SearchQuery(text="x", sort=Sort.TIME_DESC, limit=5, cursor=token,
                          filters=SearchFilters(queues=frozenset({"a", "b"})))
    assert decode_cursor(resumed) == Cursor(fingerprint(query), seen=2, key=40, skip=1)
    with pytest.raises(InvalidQueryError):
        decode_cursor(SearchQuery(text="x", sort=Sort.TIME_ASC, cursor=token))
    with pytest.raises(InvalidQueryError):
        decode_cursor(SearchQuery(text="x", cursor=token[:-3] + "AAA"))


def test_next_cursor_counts_ties_across_pages() -> None:
    query = SearchQuery(sort=Sort.TIME_DESC, limit=3)
    first = Cursor(fingerprint(query), seen=3, key=7, skip=2)
    token = next_cursor(query, Sort.TIME_DESC, first, 3, [7, 7, 7], total=20)
    assert token is not None
    assert decode_cursor(SearchQuery(sort=Sort.TIME_DESC, cursor=token)) == Cursor(
        fingerprint(query), seen=6, key=7, skip=5)
    assert next_cursor(query, Sort.TIME_DESC, first, 3, [7, 6, 5], total=6) is None
