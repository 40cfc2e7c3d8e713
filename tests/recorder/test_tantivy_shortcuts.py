"""The common-word shortcuts of the tantivy backend (doc-frequency totals, complement facets,
time windows) return exactly what the plain path returns: every page, score, total and facet
count, with and without deleted documents, on evenly spread and on skewed timestamps, and with
a long empty stretch of time under the newest documents."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recorder.search import (
    SearchDoc,
    SearchQuery,
    SearchResult,
    Sort,
    TantivyIndex,
    tantivy_keys,
    tantivy_snapshot,
)
from recorder.search.tantivy_snapshot import analyze_word
from tests.recorder.conftest import T0, make_doc

FACETS = frozenset({"channel", "queue", "agent", "direction", "kind"})
WORDS = ["the", "refund", "Refunds", "thank", "you", "zebra", "naïve", "x" * 45, "e-mail",
         "o'clock", "42", "THE"]


def corpus(n: int, rng: random.Random, *, skewed: bool = False) -> list[SearchDoc]:
    docs = []
    for i in range(n):
        words = ["the"] if rng.random() < 0.9 else []
        words += rng.sample(WORDS[1:], rng.randint(0, 3))
        minutes = rng.randrange(60) if skewed and i % 50 else rng.randrange(100_000)
        docs.append(make_doc(
            i, text=" ".join(words), subject="The refund" if i % 7 == 0 else "",
            channel=rng.choice(["voice", "email", "sms"]),
            direction=rng.choice(["inbound", "outbound"]), kind=rng.choice(["message", "note"]),
            queue=rng.choice([None, "q1", "q2", "q3"]), agent=rng.choice([None, "a1", "a2"]),
            at=T0 + timedelta(minutes=minutes)))
    return docs


@pytest.fixture
async def idx(tmp_path: Path) -> AsyncIterator[TantivyIndex]:
    ix = TantivyIndex.open(tmp_path / "ix", writer_heap=15_000_000, writer_threads=1)
    try:
        yield ix
    finally:
        await ix.close()


def shape(result: SearchResult) -> tuple[Any, ...]:
    hits = [(h.id, None if h.score is None else round(h.score, 4), dict(h.highlights))
            for h in result.hits]
    facets = {k: dict(v) for k, v in result.facets.items()}
    return hits, result.total, result.total_exact, facets


async def pages(ix: TantivyIndex, query: SearchQuery) -> list[tuple[Any, ...]]:
    out = []
    cursor = None
    while True:
        result = await ix.search(SearchQuery(text=query.text, sort=query.sort, limit=query.limit,
                                             facets=query.facets, cursor=cursor))
        out.append(shape(result))
        cursor = result.next_cursor
        if cursor is None or len(out) > 200:
            return out


used: Counter[str] = Counter()


def spy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count how often each shortcut answered (so the tests know they were exercised)."""
    used.clear()
    snap = tantivy_snapshot.Snapshot
    for name, key in (("time_window", "window"), ("complement_facets", "complement"),
                      ("term_total", "total")):
        real = getattr(snap, name)

        def wrapped(self: Any, *a: Any, _real: Any = real, _key: str = key, **kw: Any) -> Any:
            out = _real(self, *a, **kw)
            used[_key] += out is not None
            used[_key + "_none"] += out is None
            return out

        monkeypatch.setattr(snap, name, wrapped)


async def both_ways(ix: TantivyIndex, query: SearchQuery,
                    monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every page through the shortcuts, asserted equal to every page without them."""
    monkeypatch.setattr(tantivy_snapshot, "WINDOW_MIN_DOCS", 0)
    fast = await pages(ix, query)
    ix.shortcuts = False
    try:
        plain = await pages(ix, query)
    finally:
        ix.shortcuts = True
    assert fast == plain
    return fast


QUERIES = [SearchQuery(text=t, sort=s, limit=lim, facets=f)
           for t in ("the", "THE", "refund", "thank", "zebra", "nothing")
           for s in (Sort.RELEVANCE, Sort.TIME_DESC, Sort.TIME_ASC)
           for lim, f in ((7, FACETS), (50, frozenset()))]


@pytest.mark.parametrize("skewed", [False, True])
async def test_shortcuts_equal_the_plain_path(idx: TantivyIndex, skewed: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spy(monkeypatch)
    docs = corpus(600, random.Random(5), skewed=skewed)
    await idx.bulk_insert(docs)
    await idx.commit()
    assert idx._snap.live_only
    for query in QUERIES:
        got = await both_ways(idx, query, monkeypatch)
        want = sum(1 for d in docs if analyze_word(query.text) in
                   {analyze_word(w) for w in (d.text + " " + d.subject).split()})
        assert got[0][1] == want, query
        seen = [hit[0] for page in got for hit in page[0]]
        assert len(seen) == len(set(seen)) == want, query
    the = await idx.search(SearchQuery(text="the", facets=FACETS))
    has_the = [d for d in docs if "the" in d.text.lower().split() or d.subject]
    assert dict(the.facets["channel"]) == dict(Counter(d.channel for d in has_the))
    assert dict(the.facets["agent"]) == dict(Counter(d.agent for d in has_the if d.agent))
    assert used["window"] and used["complement"] and used["total"]


async def test_with_deleted_documents_totals_are_still_exact(
        idx: TantivyIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = corpus(400, random.Random(9))
    await idx.bulk_insert(docs)
    await idx.commit()
    # re-upsert a third of them without "the", and delete some: doc frequencies now overcount
    changed = [make_doc(i, text="refund only", at=d.at, queue=d.queue)
               for i, d in enumerate(docs) if i % 3 == 0]
    await idx.upsert(changed)
    await idx.delete([d.id for d in docs[1:40:2]])
    await idx.commit()
    assert not idx._snap.live_only
    live = {d.id: d for d in docs}
    live.update({d.id: d for d in changed})
    for gone in docs[1:40:2]:
        live.pop(gone.id)
    with_the = sum(1 for d in live.values() if "the" in d.text.lower().split() or d.subject)
    spy(monkeypatch)
    for query in QUERIES[:12]:
        got = await both_ways(idx, query, monkeypatch)
        if query.text.lower() == "the":
            assert got[0][1] == with_the
    assert used["total"] == 0 and used["window"] == 0  # doc frequencies overcount now
    assert used["complement"]  # still exact with deletions


async def test_time_windows_hold_across_an_empty_stretch_of_time(
        idx: TantivyIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reindexed archive (~70 days) plus a few documents from a year later: the windows
    are sized from where the keys are, so the first page of each time-ordered query still
    comes from a window when one pays (an even-spread window fell into the gap), and every page
    equals the plain path's, also after reopening (key counts rebuilt from the index)."""
    history = corpus(600, random.Random(11))
    recent = [make_doc(5000 + i, text="the new call" if i % 2 else "thank you", agent="a1",
                       at=T0 + timedelta(days=400, minutes=i)) for i in range(3)]
    await idx.bulk_insert(history)
    await idx.commit()
    await idx.upsert(recent)  # live traffic after the reindex
    await idx.commit()
    assert idx._snap.live_only
    staged = idx._keys
    monkeypatch.setattr(tantivy_snapshot, "WINDOW_MIN_DOCS", 0)
    spy(monkeypatch)
    queries = [SearchQuery(text=t, sort=s, limit=lim) for t in ("the", "thank", "refund")
               for s in (Sort.TIME_DESC, Sort.TIME_ASC) for lim in (3, 7, 50)]
    for ix in (idx, None):
        if ix is None:
            await idx.close()
            ix = TantivyIndex.open(tmp_path / "ix", writer_heap=15_000_000, writer_threads=1)
            assert ix._keys is not None and staged is not None
            assert dict(ix._keys.counts) == dict(staged.counts)  # open == counted at write
        for query in queries:
            used.clear()
            first = await ix.search(query)
            assert first.hits, query
            if 2 * tantivy_snapshot.WINDOW_PAGES * query.limit < first.total:
                assert used["window"] == 1, query  # a window of at most half the docs
            got = await both_ways(ix, query, monkeypatch)
            assert got[0][1] == first.total
            seen = [hit[0] for page in got for hit in page[0]]
            assert len(seen) == len(set(seen)) == first.total, query
        if ix is not idx:
            await ix.close()


def test_key_spread_edges_skip_empty_buckets() -> None:
    size = 1 << tantivy_keys.BUCKET_BITS
    spread = tantivy_keys.plus(None, 10 * size, 100 * size + size - 1,
                               {10: 100, 11: 100, 100: 4})
    # walking down from the top: 4 docs in bucket 100, then nothing until bucket 11, which
    # is taken whole (where its keys sit next to the gap is unknown)
    assert spread.edge(spread.high, 54, ascending=False) == 11 * size
    assert spread.edge(spread.high, 3, ascending=False) is not None
    assert spread.edge(spread.high, 3, ascending=False) >= 100 * size  # type: ignore[operator]
    up = spread.edge(spread.low, 150, ascending=True)
    assert up is not None and 11 * size <= up < 12 * size
    assert spread.edge(spread.high, 205, ascending=False) is None  # every key: no window
    assert spread.edge(11 * size - 1, 50, ascending=True) is not None


def test_the_analyzer_matches_the_index_tokenizer() -> None:
    """``analyze_word`` must turn a word into exactly the term the index stores, or the
    doc-frequency totals would be wrong."""
    assert analyze_word("Refunds") == "refund"
    assert analyze_word("THE") == "the"
    assert analyze_word("e-mail") is None  # two tokens: not a one-term query
    assert analyze_word("x" * 45) is None  # dropped by remove_long: no term
    assert analyze_word("...") is None


async def test_analyzer_agrees_with_the_query_parser(idx: TantivyIndex) -> None:
    docs = [make_doc(i, text=w) for i, w in enumerate(WORDS)]
    await idx.bulk_insert(docs)
    await idx.commit()
    for word in WORDS:
        term = analyze_word(word)
        if term is None:
            continue
        found = await idx.search(SearchQuery(text=word, limit=50))
        assert idx._snap.doc_freqs(term)[1] == found.total, word


def test_the_key_spread_survives_the_trip_to_another_process() -> None:
    """The index worker hands its spread to the hub as JSON: the same value comes back, and
    anything malformed is refused rather than trusted."""
    size = 1 << tantivy_keys.BUCKET_BITS
    spread = tantivy_keys.plus(None, 3 * size + 5, 9 * size + 7, Counter({3: 4, 9: 1}))
    back = tantivy_keys.from_wire(json.loads(json.dumps(tantivy_keys.to_wire(spread))))
    assert back == spread and dict(back.counts) == {3: 4, 9: 1}
    assert tantivy_keys.from_wire(tantivy_keys.to_wire(None)) is None
    for bad in ([1, 2], {"low": "x", "high": 1, "counts": []},
                {"low": 1, "high": 2, "counts": [[1]]},
                {"low": 1, "high": 2, "counts": [["a", 1]]}):
        with pytest.raises(ValueError, match="key spread"):
            tantivy_keys.from_wire(bad)
