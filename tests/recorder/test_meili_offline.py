"""MeiliIndex parts that need no server: filter building, document mapping, unreachable server.

The full behaviour is covered by the conformance suite when HUB_MEILI_URL points at a live
Meilisearch (see conftest); these tests only pin what can be checked without one.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from recorder.search import (
    IndexUnavailableError,
    MeiliIndex,
    SearchFilters,
    SearchQuery,
    Visibility,
)
from recorder.search.meili import _from_meili, _to_meili
from recorder.search.paging import key_bound
from recorder.search.text import parse_text
from tests.recorder.conftest import make_doc


def test_filters_are_quoted_and_anded() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    query = SearchQuery(filters=SearchFilters(
        queues=frozenset({'we"ird', "b\\q"}), at_from=at, at_to=at + timedelta(days=1),
        has_recording=False, qa_min=2.5), visibility=Visibility(agents=frozenset({"ag_1"})))
    assert MeiliIndex._filters(query) == [
        'queue IN ["b\\\\q", "we\\"ird"]',
        f"sort_key >= {key_bound(int(at.timestamp() * 1000))}",
        f"sort_key < {key_bound(int(at.timestamp() * 1000) + 86_400_000)}",
        "has_recording = false",
        "qa_score >= 2.5",
        '(agent IN ["ag_1"])',
    ]
    assert MeiliIndex._filters(SearchQuery(visibility=Visibility(agents=frozenset()))) is None


def test_query_text_keeps_phrases_and_negation() -> None:
    assert MeiliIndex._q(parse_text('refund -spam "late delivery" -"do not"')) == \
        'refund -spam "late delivery" -"do not"'


def test_document_mapping_round_trips_and_strips_sentinels() -> None:
    doc = make_doc(3, text="a\ue000b", qa_score=1.5, queue=None,
                   at=datetime(2025, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC))
    mapped = _to_meili(doc)
    assert "queue" not in mapped and mapped["text"] == "ab"
    back = _from_meili(mapped)
    assert back.at == doc.at and back.qa_score == 1.5 and back.queue is None


async def test_unreachable_server_is_an_unavailable_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(IndexUnavailableError):
        await MeiliIndex.open(f"http://127.0.0.1:{port}", None, uid="never")
