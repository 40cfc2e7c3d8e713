"""Search benchmark: bulk indexing, query latency and commit-to-searchable time of TantivyIndex.

Usage: python bench/search.py [--docs N] [--queries Q] [--dir PATH] [--seed S] [--recent-docs K]

Synthetic interactions (Zipf-distributed vocabulary, a stop word in nearly every document, all
five channels, 40 queues, 400 agents, a year of timestamps) are bulk-indexed through the same
``bulk_insert`` + ``commit`` the hub's ``reindex`` uses; document generation is not timed.
Queries go through ``TantivyIndex.search`` (the call the hub's API makes: exact count, 20 hits
with stored fields and ``<mark>`` highlights, facets where the mix asks for them), cycling
through twelve kinds in equal shares (see ``query_mix``): the very common word "the" (in ~95% of
documents, with facets and by time), a phrase of two common words ('"thank you"'), domain,
mid-frequency and rare words, two-word AND, phrases, filters, a role restriction; every fifth
query also fetches its second page through the cursor. Per-kind p95s are reported too, and the
load average, because the machine may be shared. Prints ONE JSON object.

Baseline in the same run: every query (and page 2) also runs with the index's exact
common-word shortcuts switched off (``TantivyIndex.shortcuts = False``: the plain path, which is
what the index did before them; it also drops the common-pair phrase shortcuts and filters),
alternating which goes first, on the same index. ``plain_*``
are those numbers and ``p95_plain_over_fast`` their ratio; both modes must return the same
hits and totals, or the benchmark stops.
Indexing has a same-run baseline too: the common-word ``pairs`` field (since schema version 2,
see ``recorder/search/tantivy_terms.py``) costs Python work per word at index time, so the first
``PAIRS_AB_DOCS`` documents are also indexed into scratch indexes with and without pair values,
alternating (off, on, on, off): ``pairs_ab_index_docs_per_s`` and ``pairs_index_cost_ratio``
(with / without; 1.0 = free).
``--recent-docs K`` (default 0) adds K documents from the last hour after the bulk load (``upsert``
and ``commit``, as live traffic after a ``reindex`` of the year): the time-ordered kinds then
start above a gap of months with no documents (``recent_docs`` in the JSON; compare
``common_word_by_time`` in the two per-kind p95 maps).
``api_over_raw_ratio`` needs the hub's HTTP API and is not measured here (``null``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recorder.search import (
    SearchDoc,
    SearchFilters,
    SearchQuery,
    SearchResult,
    Sort,
    TantivyIndex,
    Visibility,
    tantivy_terms,
)

# Function words first: in a Zipf distribution they take the top ranks, as in real speech.
_COMMON_TEXT = ("the to and a of i you is it for that in we your on this my be with have can "
                "thank please are not at was our")
COMMON = _COMMON_TEXT.split()
_DOMAIN_TEXT = ("refund invoice billing payment card order delivery shipment tracking account "
                "password login reset cancel subscription upgrade downgrade complaint manager "
                "callback voicemail transfer hold fax receipt contract warranty repair "
                "replacement address phone email chat agent supervisor escalation urgent broken "
                "damaged late missing charge credit debit bank statement balance overdue "
                "discount coupon promotion renewal termination outage network router modem "
                "signal")
DOMAIN = _DOMAIN_TEXT.split()
CHANNELS = ("voice", "email", "fax", "sms", "webchat")
DIRECTIONS = ("inbound", "outbound", "internal")
KINDS = ("message", "transcript", "note", "email", "fax")
START = datetime(2025, 1, 1, tzinfo=UTC)
PAIRS_AB_DOCS = 100_000


def vocabulary(rng: random.Random, size: int = 20_000) -> tuple[list[str], list[float]]:
    """Function words, domain words, then synthetic words, with Zipf weights (1 / rank)."""
    letters = "bcdfghjklmnprstvz"
    vowels = "aeiou"
    words = COMMON + DOMAIN
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    return words, weights


def make_docs(n: int, rng: random.Random) -> list[SearchDoc]:
    words, weights = vocabulary(rng)
    pool_size = 200_000
    pool = rng.choices(words, weights, k=pool_size)
    docs: list[SearchDoc] = []
    year_s = 365 * 86_400
    for i in range(n):
        length = rng.randint(15, 60)
        start = rng.randrange(pool_size - length)
        body = pool[start:start + length]
        channel = CHANNELS[i % 5]
        docs.append(SearchDoc(
            id=f"ix_{i:09d}", conversation_id=f"cv_{i // 4:09d}", contact_id=f"ct_{i // 10:08d}",
            channel=channel, direction=DIRECTIONS[i % 3], kind=KINDS[i % 5],
            at=START + timedelta(seconds=rng.randrange(year_s)),
            text=" ".join(body),
            subject=" ".join(rng.choices(DOMAIN, k=3)) if channel in ("email", "fax") else "",
            queue=f"queue{i % 40}", agent=f"agent{rng.randrange(400)}",
            has_recording=channel == "voice", qa_score=(i % 100) / 10 if i % 7 == 0 else None))
    return docs


def query_mix(rng: random.Random, count: int) -> list[tuple[str, SearchQuery]]:
    """``count`` (kind, query) pairs cycling through the realistic kinds below."""
    words, _ = vocabulary(random.Random(1))
    mid = words[200:2000]
    rare = words[5000:20_000]
    facets = frozenset({"channel", "queue", "agent", "direction"})
    builders: list[tuple[str, Callable[[], SearchQuery]]] = [
        ("common_word_facets", lambda: SearchQuery(text="the", facets=facets)),
        ("common_word_by_time", lambda: SearchQuery(text="the", sort=Sort.TIME_DESC)),
        ("domain_word", lambda: SearchQuery(text=rng.choice(DOMAIN))),
        ("mid_word", lambda: SearchQuery(text=rng.choice(mid))),
        ("rare_word", lambda: SearchQuery(text=rng.choice(rare))),
        ("two_words", lambda: SearchQuery(text=f"{rng.choice(DOMAIN)} {rng.choice(DOMAIN)}")),
        ("phrase", lambda: SearchQuery(text=f'"{rng.choice(DOMAIN)} {rng.choice(COMMON)}"')),
        ("common_phrase", lambda: SearchQuery(text=rng.choice(('"thank you"', '"for you"')))),
        ("word_channel_dates", lambda: SearchQuery(text=rng.choice(DOMAIN), filters=SearchFilters(
            channels=frozenset({"voice"}), at_from=START + timedelta(days=rng.randrange(300)),
            at_to=START + timedelta(days=330)))),
        ("agent_no_text_facets", lambda: SearchQuery(
            filters=SearchFilters(agents=frozenset({f"agent{rng.randrange(400)}"})),
            facets=facets)),
        ("word_role_restricted", lambda: SearchQuery(text=rng.choice(DOMAIN), visibility=Visibility(
            queues=frozenset(f"queue{q}" for q in range(5)), agents=frozenset({"agent7"})))),
        ("word_qa_range", lambda: SearchQuery(text=rng.choice(DOMAIN),
                                              filters=SearchFilters(qa_min=5.0))),
    ]
    return [(builders[i % len(builders)][0], builders[i % len(builders)][1]())
            for i in range(count)]


async def index_rate(docs: list[SearchDoc], pairs: bool) -> float:
    """Bulk-indexing rate (docs/s) into a fresh scratch index, with or without ``pairs`` values
    (the field stays in the schema; left empty, it costs tantivy next to nothing)."""
    real = tantivy_terms.pair_field
    if not pairs:
        tantivy_terms.pair_field = lambda *texts: ""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-ab-") as tmp:
            index = TantivyIndex.open(Path(tmp), writer_heap=512_000_000)
            t0 = time.perf_counter()
            for i in range(0, len(docs), 50_000):
                await index.bulk_insert(docs[i:i + 50_000])
            await index.commit()
            rate = len(docs) / (time.perf_counter() - t0)
            await index.close()
            return rate
    finally:
        tantivy_terms.pair_field = real


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2)


async def add_recent(index: TantivyIndex, count: int, rng: random.Random) -> None:
    """``count`` documents from the last hour, written as live traffic (see ``--recent-docs``)."""
    now = datetime.now(UTC)
    recent = [replace(doc, id=f"ix_recent{i:06d}", conversation_id=f"cv_recent{i:06d}",
                      at=now - timedelta(seconds=rng.randrange(3600)))
              for i, doc in enumerate(make_docs(count, rng))]
    await index.upsert(recent)
    await index.commit()


async def run(n: int, queries: int, directory: Path, seed: int,
              recent_docs: int = 0) -> dict[str, object]:
    rng = random.Random(seed)
    load_before = os.getloadavg()[0]  # other work on the machine skews every number below
    docs = make_docs(n, rng)
    index = TantivyIndex.open(directory, writer_heap=512_000_000)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    batch = 50_000
    for i in range(0, n, batch):
        await index.bulk_insert(docs[i:i + batch])
    await index.commit()
    index_s = time.perf_counter() - t0
    index_cpu_s = time.process_time() - cpu0  # all threads: the cost independent of load
    sample = docs[:PAIRS_AB_DOCS]
    del docs
    # Background merges after a bulk load compete with queries for the CPU; wait for them
    # (close() does) so queries are measured in steady state, and report how long that took.
    t0 = time.perf_counter()
    await index.close()
    merge_settle_s = time.perf_counter() - t0
    rates: dict[bool, list[float]] = {True: [], False: []}
    for pairs in (False, True, True, False):
        rates[pairs].append(await index_rate(sample, pairs))
    del sample
    index = TantivyIndex.open(directory)
    assert await index.count() == n
    if recent_docs:
        await add_recent(index, recent_docs, rng)
        assert await index.count() == n + recent_docs

    mix = query_mix(rng, queries)
    for _, q in mix[:20]:  # warm the OS page cache and tantivy's caches
        await index.search(q)
    by_kind: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    cpu_ms: dict[bool, list[float]] = {True: [], False: []}  # CPU of all threads, load aside

    async def timed(kind: str, query: SearchQuery, fast: bool) -> SearchResult:
        index.shortcuts = fast
        t, c = time.perf_counter(), time.process_time()
        result = await index.search(query)
        by_kind[fast].setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        cpu_ms[fast].append((time.process_time() - c) * 1000)
        return result

    def same(a: SearchResult, b: SearchResult, what: str) -> None:
        if ([h.id for h in a.hits], a.total, a.facets) != ([h.id for h in b.hits], b.total,
                                                            b.facets):
            raise SystemExit(f"shortcuts changed the result of {what}")

    for i, (kind, q) in enumerate(mix):
        order = (True, False) if i % 2 == 0 else (False, True)
        results = {fast: await timed(kind, q, fast) for fast in order}
        same(results[True], results[False], kind)
        cursor = results[True].next_cursor
        if cursor and i % 5 == 0:  # every 5th query also fetches page 2
            page2 = SearchQuery(text=q.text, filters=q.filters, sort=q.sort,
                                visibility=q.visibility, facets=q.facets, cursor=cursor)
            second = {fast: await timed(kind + "_page2", page2, fast) for fast in order}
            same(second[True], second[False], kind + "_page2")
    index.shortcuts = True
    latencies = sorted(ms for values in by_kind[True].values() for ms in values)
    plain = sorted(ms for values in by_kind[False].values() for ms in values)

    commit_ms: list[float] = []
    for i in range(5):
        word = f"zqxfresh{i}"
        doc = SearchDoc(id=f"ix_fresh{i}", conversation_id="cv_fresh", contact_id="ct_fresh",
                        channel="sms", direction="inbound", kind="message",
                        at=datetime.now(UTC), text=f"brand new {word}")
        await index.upsert([doc])
        t = time.perf_counter()
        await index.commit()
        for _ in range(1000):  # commit() promises visibility on return; poll in case it lies
            if (await index.search(SearchQuery(text=word))).total == 1:
                break
            await asyncio.sleep(0.001)
        else:
            raise SystemExit(f"{word} not searchable 1 s after commit")
        commit_ms.append((time.perf_counter() - t) * 1000)
    await index.close()

    return {
        "docs": n,
        "recent_docs": recent_docs,
        "index_docs_per_s": round(n / index_s),
        "index_docs_per_cpu_s": round(n / index_cpu_s),
        "merge_settle_s": round(merge_settle_s, 2),
        "pairs_ab_index_docs_per_s": {"docs": min(n, PAIRS_AB_DOCS),
                                      "with_pairs": round(statistics.mean(rates[True])),
                                      "without_pairs": round(statistics.mean(rates[False]))},
        "pairs_index_cost_ratio": round(statistics.mean(rates[True])
                                        / statistics.mean(rates[False]), 2),
        "query_count": len(latencies),
        "query_p50_ms": round(statistics.median(latencies), 2),
        "query_p95_ms": p95(latencies),
        "query_max_ms": round(latencies[-1], 2),
        "query_cpu_p50_ms": round(statistics.median(cpu_ms[True]), 2),
        "query_cpu_p95_ms": p95(cpu_ms[True]),
        "plain_query_p50_ms": round(statistics.median(plain), 2),
        "plain_query_p95_ms": p95(plain),
        "plain_query_max_ms": round(plain[-1], 2),
        "plain_query_cpu_p95_ms": p95(cpu_ms[False]),
        "p95_plain_over_fast": round(p95(plain) / p95(latencies), 2),
        "commit_to_searchable_ms": round(max(commit_ms), 2),
        "query_p95_ms_by_kind": {k: p95(v) for k, v in sorted(by_kind[True].items())},
        "plain_query_p95_ms_by_kind": {k: p95(v) for k, v in sorted(by_kind[False].items())},
        "cpus": os.cpu_count(),
        "load_avg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "api_over_raw_ratio": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=550)
    parser.add_argument("--dir", type=Path, default=None, help="index directory (default: temp)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--recent-docs", type=int, default=0,
                        help="documents from the last hour added after the bulk load")
    args = parser.parse_args()
    if args.dir is not None:
        print(json.dumps(asyncio.run(run(args.docs, args.queries, args.dir, args.seed,
                                         args.recent_docs))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        print(json.dumps(asyncio.run(run(args.docs, args.queries, Path(tmp), args.seed,
                                         args.recent_docs))))


if __name__ == "__main__":
    main()
