"""How the time keys of the index are spread: a coarse histogram that sizes time windows.

Why: the time-ordered shortcut (see :mod:`recorder.search.tantivy_snapshot`) reads a page from
a window of keys next to where the page starts, and the window must hold a few pages' worth of
documents. Sizing it from the key range alone assumes keys are spread evenly; a reindexed year
of history plus a few documents from today has a months-long empty gap under the newest key,
and an even-spread window lands in the gap. Counting keys per bucket finds the edge that holds
the wanted number of documents, gap or not.

The counts are a hint, never a correctness input: they include deleted and replaced documents
(too many counted only makes a window too narrow, which costs one more, wider try), and a
window that holds the page gives the same page as the full query whatever its size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import tantivy

from recorder.search.paging import HASH_BITS

BUCKET_BITS = 38  # 2**38 keys = 2**28 ms, about 3.1 days: ~120 buckets a year
_BUCKET_TIME = timedelta(milliseconds=1 << (BUCKET_BITS - HASH_BITS))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class KeySpread:
    """Documents staged per key bucket (``key >> BUCKET_BITS``) and the exact key bounds,
    inclusive. Immutable: a search reads one value while writes build the next."""

    low: int
    high: int
    counts: Mapping[int, int] = field(repr=False)

    def plus(self, low: int, high: int, buckets: Mapping[int, int]) -> KeySpread:
        """This spread plus staged documents with keys in ``[low, high]`` and ``buckets``
        counts (a copy: ~a hundred buckets a year, cheap next to a write batch)."""
        counts = dict(self.counts)
        for bucket, n in buckets.items():
            counts[bucket] = counts.get(bucket, 0) + n
        return KeySpread(min(low, self.low), max(high, self.high), MappingProxyType(counts))

    def edge(self, start: int, wanted: float, *, ascending: bool) -> int | None:
        """The key ``edge`` such that keys from ``start`` to ``edge`` (inclusive, walking up
        when ``ascending``, else down) hold about ``wanted`` documents, assuming keys spread
        evenly within a bucket (except next to empty buckets); ``None`` if that takes every
        key left (no window pays)."""
        size = 1 << BUCKET_BITS
        first = start >> BUCKET_BITS
        buckets = sorted((b for b in self.counts if b >= first) if ascending else
                         (b for b in self.counts if b <= first), reverse=not ascending)
        need = max(wanted, 1.0)
        step = 1 if ascending else -1
        expected = first
        for bucket in buckets:
            after_gap, expected = bucket != expected, bucket + step
            # the bucket's documents, assumed even over its part inside [low, high]
            lo = max(bucket * size, self.low)
            hi = min(bucket * size + size - 1, self.high)
            if hi < lo:
                continue
            whole = hi - lo + 1
            if bucket == first:  # only the part on the walking side of ``start`` counts
                lo, hi = (max(lo, start), hi) if ascending else (lo, min(hi, start))
                if hi < lo:
                    continue
            here = self.counts[bucket] * (hi - lo + 1) / whole
            if here >= need and after_gap:
                # where the keys sit in a bucket next to an empty stretch is unknown (a year
                # of history may end early in it): take it whole rather than retry
                return hi if ascending else lo
            if here >= need:
                part = int((hi - lo + 1) * need / here)
                return lo + part if ascending else hi - part
            need -= here
        return None


def from_searcher(searcher: tantivy.Searcher) -> KeySpread | None:
    """The spread of an opened index: one histogram and one min/max pass over the key column
    (at open only; writes keep it current with :func:`plus`)."""
    if int(searcher.num_docs) == 0:
        return None
    answer = searcher.aggregate(tantivy.Query.all_query(), {
        "low": {"min": {"field": "sort_key"}}, "high": {"max": {"field": "sort_key"}},
        "spread": {"histogram": {"field": "sort_key", "interval": float(1 << BUCKET_BITS),
                                 "min_doc_count": 1}}})
    low, high = answer["low"]["value"], answer["high"]["value"]
    if low is None or high is None:
        return None
    counts = {int(b["key"]) >> BUCKET_BITS: int(b["doc_count"])
              for b in answer["spread"]["buckets"]}
    return KeySpread(int(low), int(high), MappingProxyType(counts))


def count_buckets(times: Iterable[datetime]) -> Counter[int]:
    """Documents per bucket for documents at the UTC ``times``. A key is ``at_ms *
    2**HASH_BITS`` plus less than ``2**HASH_BITS`` and bucket edges are multiples of that, so
    a key's bucket is ``at_ms >> (BUCKET_BITS - HASH_BITS)``: one floor division of the time
    (this runs per document on the bulk-indexing thread)."""
    return Counter((at - _EPOCH) // _BUCKET_TIME for at in times)


def to_wire(spread: KeySpread | None) -> dict[str, object] | None:
    """``spread`` as plain JSON values, for the index writer process to hand to readers."""
    if spread is None:
        return None
    return {"low": spread.low, "high": spread.high,
            "counts": [[bucket, n] for bucket, n in spread.counts.items()]}


def from_wire(value: object) -> KeySpread | None:
    """The spread :func:`to_wire` produced; ``ValueError`` for anything else (a reader must
    not take a garbled hint on trust, however harmless)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("key spread: expected an object")
    low, high, counts = value.get("low"), value.get("high"), value.get("counts")
    if not (isinstance(low, int) and isinstance(high, int) and isinstance(counts, list)):
        raise ValueError("key spread: expected integer low/high and a counts list")
    table: dict[int, int] = {}
    for pair in counts:
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, int) for x in pair)):
            raise ValueError("key spread: each count must be [bucket, documents]")
        table[pair[0]] = pair[1]
    return KeySpread(low, high, MappingProxyType(table))


def plus(spread: KeySpread | None, low: int, high: int,
         buckets: Mapping[int, int]) -> KeySpread:
    """``spread`` (``None``: nothing staged yet) plus the given staged documents."""
    if spread is None:
        return KeySpread(low, high, MappingProxyType(dict(buckets)))
    return spread.plus(low, high, buckets)
