"""Time order keys and opaque page cursors, shared by every backend.

Time order uses one integer per document, ``sort_key = at_ms * 1024 + h``, where ``h`` is 10
bits of a hash of the id: documents in the same millisecond still get a stable order, and the
key stays below 2**53 so engines that store numbers as doubles (Meilisearch) keep it exact.

A time-sorted page continues *after* the last key seen (search-after): the next query filters
``sort_key <= last`` (descending) and skips the few hits already returned with exactly that
key. Deep pages therefore cost the same as the first, with no 10,000 cap. Relevance order has
no stable key across pages, so its cursor carries a plain offset (no cap either; the engine
collects ``offset + limit`` top hits).

A cursor also carries a fingerprint of the query, so one reused with another query is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from recorder.search.errors import InvalidQueryError
from recorder.search.types import SearchQuery, Sort, utc_ms

HASH_BITS = 10


def sort_key(doc_id: str, at_ms: int) -> int:
    """The time-order key of a document (see module docstring)."""
    digest = hashlib.blake2b(doc_id.encode(), digest_size=4).digest()
    return at_ms * (1 << HASH_BITS) + (int.from_bytes(digest, "big") & ((1 << HASH_BITS) - 1))


def key_bound(at_ms: int) -> int:
    """The smallest key of a millisecond, to turn a time range into a key range."""
    return at_ms * (1 << HASH_BITS)


def effective_sort(query: SearchQuery, has_text: bool) -> Sort:
    """Relevance is meaningless without text; fall back to newest first."""
    if query.sort is Sort.RELEVANCE and not has_text:
        return Sort.TIME_DESC
    return query.sort


def fingerprint(query: SearchQuery) -> str:
    """A stable digest of what the query selects and how it orders (not the page size)."""
    f = query.filters
    v = query.visibility
    canon = {
        "t": query.text,
        "s": query.sort.value,
        "f": [sorted(f.channels), sorted(f.queues), sorted(f.agents), sorted(f.contacts),
              sorted(f.conversations), sorted(f.directions), sorted(f.kinds),
              f.at_from and utc_ms(f.at_from), f.at_to and utc_ms(f.at_to), f.has_recording,
              f.qa_min, f.qa_max],
        "v": [None if v.queues is None else sorted(v.queues),
              None if v.agents is None else sorted(v.agents)],
    }
    raw = json.dumps(canon, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts. ``seen``: hits returned so far. ``key``/``skip``: time order
    resumes at ``key`` after skipping ``skip`` hits that carry exactly that key; relevance order
    resumes at offset ``seen`` (``key`` is ``None``)."""

    fingerprint: str
    seen: int
    key: int | None = None
    skip: int = 0

    def encode(self) -> str:
        raw = json.dumps([1, self.fingerprint, self.seen, self.key, self.skip]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(query: SearchQuery) -> Cursor | None:
    """The query's cursor, checked against the query; ``None`` for a first page."""
    if query.cursor is None:
        return None
    try:
        padded = query.cursor + "=" * (-len(query.cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        version, fp, seen, key, skip = data
    except (ValueError, TypeError) as exc:
        raise InvalidQueryError("cursor", "malformed") from exc
    ints_ok = isinstance(seen, int) and isinstance(skip, int) and seen >= 0 and skip >= 0
    if version != 1 or not isinstance(fp, str) or not ints_ok or not (
            key is None or isinstance(key, int)):
        raise InvalidQueryError("cursor", "malformed")
    if fp != fingerprint(query):
        raise InvalidQueryError("cursor", "belongs to a different query")
    return Cursor(fp, seen, key, skip)


def next_cursor(query: SearchQuery, sort: Sort, prev: Cursor | None, n_hits: int,
                keys: Sequence[int], total: int) -> str | None:
    """The cursor after a page of ``n_hits`` hits whose time ``keys`` (in page order; empty
    for relevance order) are given, or ``None`` when ``total`` says nothing is left."""
    seen = (prev.seen if prev else 0) + n_hits
    if n_hits == 0 or seen >= total:
        return None
    fp = fingerprint(query)
    if sort is Sort.RELEVANCE:
        return Cursor(fp, seen).encode()
    if len(keys) != n_hits:
        raise ValueError("time order needs one key per hit")
    last = keys[-1]
    run = 0
    for key in reversed(keys):
        if key != last:
            break
        run += 1
    if run == len(keys) and prev is not None and prev.key == last:
        run += prev.skip
    return Cursor(fp, seen, last, run).encode()
