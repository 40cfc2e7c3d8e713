"""Property test: every backend agrees with a plain-Python model of filters, visibility,
facets, time order and pagination, on random documents and random queries."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.search import SearchDoc, SearchFilters, SearchIndex, SearchQuery, Sort, Visibility
from recorder.search.paging import sort_key
from recorder.search.types import utc_ms
from tests.recorder.conftest import T0, make_doc

WORDS = ("alpha", "beta", "gamma")
maybe = st.one_of(st.none(), st.sampled_from(["q1", "q2"]))

docs_st = st.lists(st.fixed_dictionaries({
    "channel": st.sampled_from(["voice", "email", "sms"]),
    "queue": st.one_of(st.none(), st.sampled_from(["q1", "q2", "q3"])),
    "agent": st.one_of(st.none(), st.sampled_from(["a1", "a2"])),
    "minute": st.integers(0, 5),  # few distinct times: many ties
    "has_recording": st.booleans(),
    "qa_score": st.one_of(st.none(), st.sampled_from([1.0, 5.0, 9.5])),
    "words": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
}), max_size=25)

query_st = st.fixed_dictionaries({
    "text": st.sampled_from(["", *WORDS]),
    "channels": st.frozensets(st.sampled_from(["voice", "email", "sms"]), max_size=2),
    "queues": st.frozensets(st.sampled_from(["q1", "q2", "q3"]), max_size=2),
    "has_recording": st.one_of(st.none(), st.booleans()),
    "qa_min": st.one_of(st.none(), st.sampled_from([1.0, 5.0])),
    "from_minute": st.one_of(st.none(), st.integers(0, 5)),
    "vis_queues": st.one_of(st.none(), st.frozensets(st.sampled_from(["q1", "q2"]))),
    "vis_agents": st.one_of(st.none(), st.frozensets(st.sampled_from(["a1"]))),
    "sort": st.sampled_from([Sort.TIME_ASC, Sort.TIME_DESC, Sort.RELEVANCE]),
    "limit": st.integers(1, 7),
})


def visible(doc: SearchDoc, q: dict[str, object]) -> bool:
    vq, va = q["vis_queues"], q["vis_agents"]
    if vq is None and va is None:
        return True
    return (vq is not None and doc.queue in vq) or (va is not None and doc.agent in va)  # type: ignore[operator]


def expected(docs: list[SearchDoc], q: dict[str, object]) -> list[SearchDoc]:
    out = []
    for d in docs:
        if q["text"] and q["text"] not in d.text.split():
            continue
        if q["channels"] and d.channel not in q["channels"]:  # type: ignore[operator]
            continue
        if q["queues"] and d.queue not in q["queues"]:  # type: ignore[operator]
            continue
        if q["has_recording"] is not None and d.has_recording != q["has_recording"]:
            continue
        if q["qa_min"] is not None and (d.qa_score is None or d.qa_score < q["qa_min"]):  # type: ignore[operator]
            continue
        if q["from_minute"] is not None and d.at < T0 + timedelta(minutes=q["from_minute"]):  # type: ignore[arg-type]
            continue
        if visible(d, q):
            out.append(d)
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_docs=docs_st, q=query_st)
async def test_backend_matches_the_model(index: SearchIndex, raw_docs: list[dict[str, object]],
                                         q: dict[str, object]) -> None:
    await index.clear()
    docs = [make_doc(n, channel=r["channel"], queue=r["queue"], agent=r["agent"],
                     at=T0 + timedelta(minutes=r["minute"]),  # type: ignore[arg-type]
                     has_recording=r["has_recording"], qa_score=r["qa_score"],
                     text=" ".join(r["words"]))  # type: ignore[arg-type]
            for n, r in enumerate(raw_docs)]
    await index.upsert(docs)
    await index.commit()
    from_minute = q["from_minute"]
    query = SearchQuery(
        text=q["text"], sort=q["sort"], limit=q["limit"],  # type: ignore[arg-type]
        facets=frozenset({"channel", "queue"}),
        filters=SearchFilters(
            channels=q["channels"], queues=q["queues"],  # type: ignore[arg-type]
            has_recording=q["has_recording"], qa_min=q["qa_min"],  # type: ignore[arg-type]
            at_from=None if from_minute is None else T0 + timedelta(minutes=from_minute)),  # type: ignore[arg-type]
        visibility=Visibility(queues=q["vis_queues"], agents=q["vis_agents"]))  # type: ignore[arg-type]
    want = expected(docs, q)
    got: list[SearchDoc] = []
    cursor = None
    first = None
    while True:
        page = await index.search(SearchQuery(
            text=query.text, sort=query.sort, limit=query.limit, facets=query.facets,
            filters=query.filters, visibility=query.visibility, cursor=cursor))
        first = first or page
        assert page.total == len(want)
        got += [h.doc for h in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(d.id for d in got) == sorted(d.id for d in want)
    effective = Sort.TIME_DESC if query.sort is Sort.RELEVANCE and not query.text else query.sort
    if effective is not Sort.RELEVANCE:
        keys = [sort_key(d.id, utc_ms(d.at)) for d in got]
        assert keys == sorted(keys, reverse=effective is Sort.TIME_DESC)
    assert dict(first.facets["channel"]) == dict(Counter(d.channel for d in want))
    assert dict(first.facets["queue"]) == dict(Counter(d.queue for d in want if d.queue))
