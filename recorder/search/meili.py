"""The shared search index: Meilisearch, for deployments with several hub processes.

Theory of operation: every hub process talks to the same Meilisearch index over HTTP with the
official client (synchronous, so each call runs in a worker thread). Meilisearch applies writes
as asynchronous *tasks*; ``upsert``/``delete*`` enqueue tasks and remember their ids, and
:meth:`MeiliIndex.commit` waits until all of them succeeded, which is the moment the change is
durable and searchable (the protocol's contract). A failed task raises
:class:`IndexUnavailableError` so the hub's outbox keeps the rows and retries.

Settings chosen for parity with the tantivy backend: search only ``subject``/``text``, every
word required (``matchingStrategy: all``), typo tolerance and prefix search off (QA searches
for what was said, not what resembles it), exact totals (page mode) with ``maxTotalHits``
raised far above 10,000, and the ``sort`` ranking rule first so time order is strict even with
query text. Meilisearch does not stem English, so "calling" does not find "call" here while it
does with tantivy. Needs Meilisearch >= 1.12 (``prefixSearch`` setting, negative ``-word``
operator, delete by filter). UNVERIFIED against a live server: none could be installed where
this was written; the conformance suite runs against one when ``HUB_MEILI_URL`` is set.

Highlights are marked with private-use sentinels and escaped here, so stored text can never
inject HTML into a snippet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

import meilisearch
from meilisearch.errors import MeilisearchError

from recorder.search.errors import IndexUnavailableError
from recorder.search.paging import Cursor, decode_cursor, effective_sort, key_bound, next_cursor
from recorder.search.paging import sort_key as make_sort_key
from recorder.search.text import Clause, parse_text, positive, render_sentinels
from recorder.search.types import (
    SearchDoc,
    SearchHit,
    SearchQuery,
    SearchResult,
    Sort,
    facet_counts,
    utc_ms,
)

log = logging.getLogger(__name__)

_PRE, _POST = "\ue000", "\ue001"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATCH = 10_000
_FILTERABLE = ["id", "conversation_id", "contact_id", "channel", "queue", "agent", "direction",
               "kind", "sort_key", "has_recording", "qa_score"]
_T = TypeVar("_T")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in(field: str, values: Iterable[str]) -> str:
    return f"{field} IN [{', '.join(_quote(v) for v in sorted(values))}]"


def _clean(text: str) -> str:
    return text.replace(_PRE, "").replace(_POST, "")


def _to_meili(doc: SearchDoc) -> dict[str, Any]:
    delta = doc.at - _EPOCH
    out: dict[str, Any] = {
        "id": doc.id, "conversation_id": doc.conversation_id, "contact_id": doc.contact_id,
        "channel": doc.channel, "direction": doc.direction, "kind": doc.kind,
        "subject": _clean(doc.subject), "text": _clean(doc.text),
        "sort_key": make_sort_key(doc.id, utc_ms(doc.at)),
        "at_us": (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
        "has_recording": doc.has_recording,
    }
    for name in ("queue", "agent", "qa_score"):
        value = getattr(doc, name)
        if value is not None:
            out[name] = value
    return out


def _from_meili(hit: Mapping[str, Any]) -> SearchDoc:
    qa = hit.get("qa_score")
    return SearchDoc(
        id=hit["id"], conversation_id=hit["conversation_id"], contact_id=hit["contact_id"],
        channel=hit["channel"], direction=hit["direction"], kind=hit["kind"],
        at=_EPOCH + timedelta(microseconds=int(hit["at_us"])), text=hit.get("text") or "",
        subject=hit.get("subject") or "", queue=hit.get("queue"), agent=hit.get("agent"),
        has_recording=bool(hit.get("has_recording")), qa_score=None if qa is None else float(qa))


class MeiliIndex:
    """:class:`~recorder.search.protocol.SearchIndex` on a Meilisearch index."""

    def __init__(self, client: meilisearch.Client, uid: str, max_total_hits: int,
                 task_timeout_ms: int) -> None:
        self._client = client
        self._index = client.index(uid)
        self._uid = uid
        self._max_total_hits = max_total_hits
        self._timeout_ms = task_timeout_ms
        self._pending: list[int] = []

    @classmethod
    async def open(cls, url: str, api_key: str | None = None, *, uid: str = "interactions",
                   max_total_hits: int = 10_000_000, task_timeout_ms: int = 60_000) -> MeiliIndex:
        """Connect, create the index if needed and apply the settings (idempotent)."""
        client = meilisearch.Client(url, api_key, timeout=30)
        self = cls(client, uid, max_total_hits, task_timeout_ms)
        settings = {
            "searchableAttributes": ["subject", "text"],
            "filterableAttributes": _FILTERABLE,
            "sortableAttributes": ["sort_key"],
            # "sort" first: a time-sorted search is strictly by time; it is a no-op for
            # relevance searches, which pass no sort parameter.
            "rankingRules": ["sort", "words", "typo", "proximity", "attribute", "exactness"],
            "typoTolerance": {"enabled": False},
            "pagination": {"maxTotalHits": max_total_hits},
            "faceting": {"maxValuesPerFacet": 10_000},
            "prefixSearch": "disabled",
        }

        def setup() -> None:
            task = client.create_index(uid, {"primaryKey": "id"})
            done = client.wait_for_task(task.task_uid, timeout_in_ms=task_timeout_ms)
            if done.status != "succeeded" and (done.error or {}).get("code") != \
                    "index_already_exists":
                raise IndexUnavailableError(f"cannot create index {uid}: {done.error}")
            self._pending.append(self._index.update_settings(settings).task_uid)

        await self._call(setup)
        await self.commit()
        return self

    async def _call(self, fn: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(fn)
        except MeilisearchError as exc:
            log.warning("meilisearch call failed: %s", type(exc).__name__)
            raise IndexUnavailableError(f"meilisearch: {exc}") from exc

    # ---- writes -------------------------------------------------------------------------

    async def upsert(self, docs: Iterable[SearchDoc]) -> None:
        payload = [_to_meili(d) for d in docs]

        def send() -> None:
            for i in range(0, len(payload), _BATCH):
                info = self._index.add_documents(payload[i:i + _BATCH], primary_key="id")
                self._pending.append(info.task_uid)

        if payload:
            await self._call(send)

    async def bulk_insert(self, docs: Iterable[SearchDoc]) -> None:
        await self.upsert(docs)  # Meilisearch replaces by primary key at no extra cost

    async def delete(self, ids: Iterable[str]) -> None:
        wanted = sorted(set(ids))

        def send() -> None:
            for i in range(0, len(wanted), 1000):
                info = self._index.delete_documents(filter=_in("id", wanted[i:i + 1000]))
                self._pending.append(info.task_uid)

        if wanted:
            await self._call(send)

    async def delete_by_contact(self, contact_id: str) -> None:
        filt = f"contact_id = {_quote(contact_id)}"
        info = await self._call(lambda: self._index.delete_documents(filter=filt))
        self._pending.append(info.task_uid)

    async def clear(self) -> None:
        info = await self._call(self._index.delete_all_documents)
        self._pending.append(info.task_uid)
        await self.commit()

    async def commit(self) -> None:
        pending, self._pending = self._pending, []

        def wait() -> None:
            for uid in pending:
                task = self._client.wait_for_task(uid, timeout_in_ms=self._timeout_ms)
                if task.status != "succeeded":
                    raise IndexUnavailableError(f"meilisearch task {uid} {task.status}: "
                                                f"{(task.error or {}).get('code')}")

        # On failure the tasks are forgotten, not retried: the hub's outbox replays the whole
        # batch, and replayed upserts/deletes are idempotent.
        await self._call(wait)

    async def count(self) -> int:
        stats = await self._call(self._index.get_stats)
        return int(stats.number_of_documents)

    async def close(self) -> None:
        self._pending.clear()

    async def drop(self) -> None:
        """Delete the whole Meilisearch index (tests and decommissioning)."""
        info = await self._call(lambda: self._client.delete_index(self._uid))
        await self._call(lambda: self._client.wait_for_task(info.task_uid,
                                                            timeout_in_ms=self._timeout_ms))

    # ---- queries ------------------------------------------------------------------------

    @staticmethod
    def _q(clauses: tuple[Clause, ...]) -> str:
        return " ".join(("-" if c.negated else "") + (_quote(c.text) if c.phrase else c.text)
                        for c in clauses)

    @staticmethod
    def _filters(query: SearchQuery) -> list[str] | None:
        """Meilisearch filter clauses (ANDed), or ``None`` if visibility allows nothing."""
        f = query.filters
        out: list[str] = []
        for field, values in (("channel", f.channels), ("queue", f.queues), ("agent", f.agents),
                              ("contact_id", f.contacts), ("conversation_id", f.conversations),
                              ("direction", f.directions), ("kind", f.kinds)):
            if values:
                out.append(_in(field, values))
        if f.at_from is not None:
            out.append(f"sort_key >= {key_bound(utc_ms(f.at_from))}")
        if f.at_to is not None:
            out.append(f"sort_key < {key_bound(utc_ms(f.at_to))}")
        if f.has_recording is not None:
            out.append(f"has_recording = {'true' if f.has_recording else 'false'}")
        if f.qa_min is not None:
            out.append(f"qa_score >= {f.qa_min!r}")
        if f.qa_max is not None:
            out.append(f"qa_score <= {f.qa_max!r}")
        v = query.visibility
        if not v.unrestricted:
            grants = [_in(name, values) for name, values in
                      (("queue", v.queues), ("agent", v.agents)) if values]
            if not grants:
                return None
            out.append("(" + " OR ".join(grants) + ")")
        return out

    async def search(self, query: SearchQuery) -> SearchResult:
        clauses = parse_text(query.text)
        sort = effective_sort(query, positive(clauses))
        prev = decode_cursor(query)
        base = self._filters(query)
        if base is None:
            return SearchResult((), 0, True, MappingProxyType({}), None)
        params: dict[str, Any] = {"filter": list(base), "matchingStrategy": "all",
                                  "showRankingScore": True}
        skip = 0
        if sort is not Sort.RELEVANCE:
            params["sort"] = ["sort_key:asc" if sort is Sort.TIME_ASC else "sort_key:desc"]
            if prev is not None:
                op = ">=" if sort is Sort.TIME_ASC else "<="
                params["filter"].append(f"sort_key {op} {prev.key}")
                skip = prev.skip
        elif prev is not None:
            skip = prev.seen
        if skip % query.limit == 0:
            params.update(page=skip // query.limit + 1, hitsPerPage=query.limit)
            skip = 0
        else:
            params.update(page=1, hitsPerPage=skip + query.limit)
        if query.highlight and positive(clauses):
            params.update(attributesToHighlight=["subject", "text"], attributesToCrop=["text"],
                          cropLength=30, cropMarker="\u2026", highlightPreTag=_PRE,
                          highlightPostTag=_POST)
        keyset = prev is not None and sort is not Sort.RELEVANCE
        if query.facets and not keyset:
            params["facets"] = sorted(query.facets)
        q = self._q(clauses)
        answer = await self._call(lambda: self._index.search(q, params))
        facet_src: Mapping[str, Mapping[str, int]] = answer.get("facetDistribution") or {}
        if query.facets and keyset:
            facet_params = {"filter": base, "matchingStrategy": "all", "limit": 0,
                            "facets": sorted(query.facets)}
            facet_answer = await self._call(lambda: self._index.search(q, facet_params))
            facet_src = facet_answer.get("facetDistribution") or {}
        return self._result(query, sort, prev, answer, skip, facet_src)

    def _result(self, query: SearchQuery, sort: Sort, prev: Cursor | None,
                answer: Mapping[str, Any], skip: int,
                facet_src: Mapping[str, Mapping[str, int]]) -> SearchResult:
        raw_hits = list(answer.get("hits", []))[skip:]
        matched = int(answer.get("totalHits", 0))
        exact = matched < self._max_total_hits
        if prev is not None and sort is not Sort.RELEVANCE:
            total = prev.seen + matched - prev.skip
        else:
            total = matched
        hits: list[SearchHit] = []
        keys: list[int] = []
        for raw in raw_hits:
            formatted = raw.get("_formatted") or {}
            highlights = {name: render_sentinels(str(formatted[name]), _PRE, _POST)
                          for name in ("subject", "text")
                          if _PRE in str(formatted.get(name, ""))}
            score = raw.get("_rankingScore") if sort is Sort.RELEVANCE else None
            hits.append(SearchHit(_from_meili(raw), None if score is None else float(score),
                                  MappingProxyType(highlights)))
            keys.append(int(raw["sort_key"]))
        facets = {name: facet_counts(facet_src.get(name, {}).items(), query.facet_size)
                  for name in sorted(query.facets)}
        order_keys = [] if sort is Sort.RELEVANCE else keys
        return SearchResult(tuple(hits), total, exact, MappingProxyType(facets),
                            next_cursor(query, sort, prev, len(hits), order_keys, total))
