"""The ``pairs`` field (adjacent common-word pairs, schema version 2): a pair term is in a
document exactly when tantivy's phrase query matches those two words there, phrase queries
through the pair shortcuts and filters return what the plain path returns, and an index of
schema version 1 on disk is refused by the index and rebuilt by ``contacthub reindex``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import tantivy

from recorder.search import (
    SchemaMismatchError,
    SearchDoc,
    SearchFilters,
    SearchQuery,
    Sort,
    TantivyIndex,
    tantivy_schema,
    tantivy_terms,
)
from recorder.search.paging import sort_key
from recorder.search.tantivy_schema import PAIR_FIELD, SCHEMA_VERSION
from recorder.search.tantivy_terms import COMMON_WORDS, pair_field, phrase_pair
from recorder.search.types import utc_ms
from tests.recorder.conftest import T0, make_doc
from tests.recorder.test_tantivy_shortcuts import FACETS, both_ways, spy, used

LONG = "x" * 45  # dropped by en_stem (>= 40 bytes), but keeps its position
WORDS = ["thank", "Thanks", "you", "YOU'RE", "for", "the", "refund", "e-mail", "naïve", "So",
         "Please", "very", "really", "thankful", "helping", "Well,", "ok", "it's", "Yes.",
         "café", "Straße", "STRASSE", "ﬁle", "İstanbul", "42", "4.2", LONG, "x" * 39,
         "thank,", "(you)", "_", "Ünïcödé" * 6]


def texts(rng: random.Random, n: int) -> list[str]:
    out = ["Thank you", "thanks, YOU!", "thank " + LONG + " you", "thank you thank you",
           "you thank", "e-mail me", "naïve café", "İstanbul straße", LONG, ""]
    out += [" ".join(rng.choices(WORDS, k=rng.randint(1, 8))) for _ in range(n)]
    return out


@pytest.fixture
async def idx(tmp_path: Path) -> AsyncIterator[TantivyIndex]:
    ix = TantivyIndex.open(tmp_path / "ix", writer_heap=15_000_000, writer_threads=1)
    try:
        yield ix
    finally:
        await ix.close()


async def load(ix: TantivyIndex, rng: random.Random, n: int) -> list[SearchDoc]:
    bodies = texts(rng, n)
    docs = [make_doc(i, text=t, subject=rng.choice(["", "Thank", "you thank", "the refund"]),
                     channel=rng.choice(["voice", "email"]), queue=rng.choice([None, "q1", "q2"]),
                     at=T0 + timedelta(minutes=rng.randrange(10_000)))
            for i, t in enumerate(bodies)]
    await ix.bulk_insert(docs)
    await ix.commit()
    return docs


def phrases(docs: list[SearchDoc]) -> list[str]:
    """Every adjacent pair of raw words in the corpus, plus pairs that never occur."""
    found = {f"{a} {b}" for d in docs for t in (d.text, d.subject)
             for a, b in pairwise(t.split())}
    return [*sorted(found), "you thank", "refund thank", "thank refund", "Thank-You", "it s",
            "please thank"]


async def test_pair_terms_are_exactly_the_phrase_matches(idx: TantivyIndex) -> None:
    docs = await load(idx, random.Random(3), 300)
    searcher = idx._snap.searcher
    checked = 0
    idx.shortcuts = False  # the plain phrase query is the reference
    for text in phrases(docs):
        term = phrase_pair(text)
        if term is None:
            continue
        plain = await idx.search(SearchQuery(text=f'"{text}"', limit=1000))
        by_pair = searcher.search(
            tantivy.Query.term_query(idx._schema, PAIR_FIELD, term), 1000).hits
        pair_ids = {searcher.doc(a).get_first("id") for _, a in by_pair}
        assert pair_ids == {h.id for h in plain.hits}, text
        assert idx._snap.pair_total(term) == plain.total, text
        checked += 1
    assert checked > 100


async def test_phrase_queries_equal_the_plain_path(idx: TantivyIndex,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    spy(monkeypatch)
    docs = await load(idx, random.Random(4), 400)
    picked = random.Random(1).sample(phrases(docs), 25)
    longer = ["thank you thank", "thank you for the refund", "thank " + LONG + " you",
              LONG + " thank you", "you're thank", "thank you -refund", "refund \"thank you\""]
    for text in picked + longer:
        for sort in (Sort.RELEVANCE, Sort.TIME_DESC, Sort.TIME_ASC):
            for limit, facets in ((7, FACETS), (50, frozenset[str]())):
                query = SearchQuery(text=f'"{text}"' if '"' not in text else text, sort=sort,
                                    limit=limit, facets=facets)
                await both_ways(idx, query, monkeypatch)
    assert used["total"] and used["window"]


async def test_phrases_with_deleted_documents(idx: TantivyIndex,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Doc frequencies count deleted docs: the pair total is not used, results stay exact."""
    docs = await load(idx, random.Random(6), 300)
    await idx.upsert([make_doc(i, text="refund only", at=d.at)
                      for i, d in enumerate(docs) if i % 3 == 0])
    await idx.delete([d.id for d in docs[1:60:2]])
    await idx.commit()
    assert not idx._snap.live_only and idx._snap.pair_total("thank_you") is None
    spy(monkeypatch)
    for sort in (Sort.RELEVANCE, Sort.TIME_DESC):
        pages = await both_ways(idx, SearchQuery(text='"thank you"', sort=sort, limit=9,
                                                 facets=FACETS), monkeypatch)
        assert pages[0][1] == sum(1 for i, d in enumerate(docs) if i % 3 and not (
            i < 60 and i % 2) and "thank_you" in pair_field(d.subject, d.text))
    assert used["total"] == 0


async def test_filters_and_restrictions_keep_phrase_results(idx: TantivyIndex) -> None:
    await load(idx, random.Random(5), 300)
    queries = [SearchQuery(text='"thank you"', filters=SearchFilters(channels=frozenset({"voice"})),
                           facets=FACETS, limit=100),
               SearchQuery(text='"thank you" -refund', facets=FACETS, limit=100),
               SearchQuery(text='-"thank you"', limit=100)]
    for query in queries:
        fast = await idx.search(query)
        idx.shortcuts = False
        try:
            plain = await idx.search(query)
        finally:
            idx.shortcuts = True
        assert ([(h.id, h.score) for h in fast.hits], fast.total, fast.facets) == (
            [(h.id, h.score) for h in plain.hits], plain.total, plain.facets)
        assert fast.total > 0


def test_pair_field_values() -> None:
    assert {"thank", "you", "the", "please"} <= COMMON_WORDS and "refund" not in COMMON_WORDS
    assert pair_field("The refund", "Thanks, you're") == "thank_you"  # "re", "refund": rare
    assert pair_field("", "Thank you for the help") == "thank_you you_for for_the the_help"
    assert pair_field("So", "very") == ""  # never across fields
    assert pair_field("", "thank " + LONG + " you") == ""  # the long word breaks adjacency
    assert pair_field("", "thank " + "é" * 20 + " you") == ""  # 40 bytes: dropped too
    assert pair_field("", "thank " + "é" * 19 + " you") == ""  # kept, and not common
    assert pair_field("", "naïve: thank you!") == "thank_you"
    assert phrase_pair("Thank YOU") == "thank_you"
    assert phrase_pair("thank-you") == "thank_you"
    assert phrase_pair("thankful helping") == "thank_help"  # stems, like the index
    assert phrase_pair("the refund") is None
    assert phrase_pair("thank") is None
    assert phrase_pair("thank you so") is None
    assert phrase_pair(LONG + " thank you") is None


def test_the_ascii_fast_path_equals_tantivys_analyzers() -> None:
    """Every ASCII character, common words in every case, long tokens: the str-based
    tokenizer gives what tantivy's simple tokenizer + lowercase + stemmer give."""
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(128)]
    words = [*sorted(COMMON_WORDS), "THANKS", "Thanking", "Helped", "x" * 40, "y" * 39]
    for _ in range(3000):
        parts = [rng.choice(words) if rng.random() < 0.6 else
                 "".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(8)]
        text = "".join(p + rng.choice([" ", ",", "_", "\x1c", "\t", "-", ""]) for p in parts)
        assert tantivy_terms._classes(text) == tantivy_terms._classes_by_tantivy(text), text


def _reference_pairs(*texts: str) -> str:
    """The pair field built from tantivy's own analyzers only (no cache, no ASCII path)."""
    out = []
    for text in texts:
        classes = tantivy_terms._classes_by_tantivy(text)
        out += [f"{a}_{b}" for a, b in pairwise(classes) if a and b]
    return " ".join(out)


def test_pair_field_equals_tantivys_analyzers_with_cold_and_warm_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``pair_field`` classifies from the word cache and falls back when a word is new part
    way through a text: the same pairs either way, and the same as tantivy's analyzers."""
    monkeypatch.setattr(tantivy_terms, "_kinds", {})
    rng = random.Random(12)
    words = [*sorted(COMMON_WORDS), "THANKS", "Thanking", "refund", "x" * 40, "naïve", "42"]
    for _ in range(2000):
        subject, text = (" ".join(rng.choices(words, k=rng.randint(0, 9))) for _ in "st")
        expected = _reference_pairs(subject, text)
        assert pair_field(subject, text) == expected, (subject, text)  # cold or half warm
        assert pair_field(subject, text) == expected, (subject, text)  # every word cached
    assert len(tantivy_terms._kinds) > 100


def test_documents_round_trip_through_the_tantivy_mapping() -> None:
    """``to_tantivy`` leaves empty and absent values out; ``from_tantivy`` restores them."""
    schema = tantivy_schema.build_schema()
    for doc in (make_doc(1, text="Thank you", subject=""),
                make_doc(2, text="", subject="Refund", queue=None, agent=None, qa_score=4.5,
                         has_recording=True, at=T0 + timedelta(microseconds=123_457)),
                make_doc(3, at=datetime(1969, 12, 31, 23, 59, 59, 999_001, tzinfo=UTC))):
        stored = tantivy_schema.to_tantivy(doc)
        assert ("subject" in stored.to_dict()) == bool(doc.subject)
        assert stored.get_first("sort_key") == sort_key(doc.id, utc_ms(doc.at))
        assert tantivy_schema.from_tantivy(stored) == doc
        parsed = tantivy.Document.from_dict(stored.to_dict(), schema)  # every value fits
        assert tantivy_schema.from_tantivy(parsed) == doc


def _write_v1_index(directory: Path) -> None:
    """An index as schema version 1 wrote it (no ``pairs`` field), with one document."""
    sb = tantivy.SchemaBuilder()
    for name in ("id", "conversation_id", "contact_id"):
        sb.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in ("channel", "queue", "agent", "direction", "kind"):
        sb.add_text_field(name, stored=True, fast=True, tokenizer_name="raw",
                          index_option="basic")
    for name in ("subject", "text"):
        sb.add_text_field(name, stored=True, tokenizer_name="en_stem", index_option="position")
    sb.add_integer_field("sort_key", indexed=True, fast=True)
    sb.add_integer_field("at_us", stored=True)
    sb.add_boolean_field("has_recording", stored=True, indexed=True, fast=True)
    sb.add_float_field("qa_score", stored=True, indexed=True, fast=True)
    schema = sb.build()
    directory.mkdir(parents=True)
    (directory / "contacthub-index.json").write_text(json.dumps({"schema_version": 1}))
    index = tantivy.Index(schema, path=str(directory), reuse=True)
    writer = index.writer(15_000_000, 1)
    writer.add_document(tantivy.Document.from_dict(
        {"id": "ix_old", "text": "thank you", "channel": "sms", "sort_key": 1, "at_us": 1},
        schema))
    writer.commit()
    writer.wait_merging_threads()


def test_a_version_1_index_is_refused(tmp_path: Path) -> None:
    _write_v1_index(tmp_path / "index")
    with pytest.raises(SchemaMismatchError) as err:
        TantivyIndex.open(tmp_path / "index")
    assert f"schema 1, need {SCHEMA_VERSION}" in err.value.message


async def test_contacthub_reindex_rebuilds_a_version_1_index(tmp_path: Path) -> None:
    """The upgrade path end to end: the real CLI in a subprocess, SQLite under the data dir."""
    _write_v1_index(tmp_path / "index")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATA_DIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-m", "hub.cli", "reindex"], capture_output=True,
                         text=True, env=env, timeout=180, check=False,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert "another schema version: rebuilding it" in run.stderr
    marker = json.loads((tmp_path / "index" / "contacthub-index.json").read_text())
    assert marker == {"schema_version": SCHEMA_VERSION}
    index = TantivyIndex.open(tmp_path / "index")
    try:
        assert await index.count() == 0  # rebuilt from the (empty) database: the old doc is gone
        await index.upsert([make_doc(1, text="Thank you")])
        await index.commit()
        assert index._snap.pair_total("thank_you") == 1  # the new field is there
    finally:
        await index.close()
