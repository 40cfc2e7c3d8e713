"""The SearchIndex conformance suite: every test runs against every backend (see conftest)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from recorder.search import (
    InvalidQueryError,
    SearchFilters,
    SearchIndex,
    SearchQuery,
    SearchResult,
    Sort,
    Visibility,
)
from tests.recorder.conftest import T0, make_doc


async def ids(index: SearchIndex, query: SearchQuery) -> list[str]:
    return [h.id for h in (await index.search(query)).hits]


async def all_pages(index: SearchIndex, query: SearchQuery) -> tuple[list[str], list[int]]:
    """Every id over all pages, and the ``total`` each page reported."""
    seen: list[str] = []
    totals: list[int] = []
    cursor: str | None = None
    for _ in range(1000):
        page: SearchResult = await index.search(SearchQuery(
            text=query.text, filters=query.filters, visibility=query.visibility,
            sort=query.sort, limit=query.limit, cursor=cursor))
        seen += [h.id for h in page.hits]
        totals.append(page.total)
        cursor = page.next_cursor
        if cursor is None:
            return seen, totals
    raise AssertionError("pagination did not end")


async def test_round_trip_of_every_field(index: SearchIndex) -> None:
    full = make_doc(1, text="Where is my refund?", subject="Refund", queue="billing",
                    agent="ag_carol", has_recording=True, qa_score=7.25, channel="voice",
                    direction="outbound", kind="transcript",
                    at=T0 + timedelta(microseconds=123_456))
    bare = make_doc(2, queue=None, agent=None, subject="", text="refund pending")
    await index.upsert([full, bare])
    await index.commit()
    assert await index.count() == 2
    result = await index.search(SearchQuery(text="refund", sort=Sort.TIME_ASC))
    assert [h.doc for h in result.hits] == [full, bare]
    assert result.total == 2 and result.total_exact


async def test_upsert_replaces_by_id_and_last_write_wins(index: SearchIndex) -> None:
    await index.upsert([make_doc(1, text="original wording")])
    await index.commit()
    await index.upsert([make_doc(1, text="first edit"), make_doc(1, text="second edit")])
    await index.commit()
    assert await index.count() == 1
    assert await ids(index, SearchQuery(text="original")) == []
    assert await ids(index, SearchQuery(text="first")) == []
    assert await ids(index, SearchQuery(text="second edit")) == ["ix_00001"]


async def test_delete_and_delete_by_contact(index: SearchIndex) -> None:
    await index.upsert([make_doc(1), make_doc(2), make_doc(3, contact_id="ct_eve"),
                        make_doc(4, contact_id="ct_eve")])
    await index.commit()
    await index.delete(["ix_00001", "ix_99999"])  # an absent id is a no-op
    await index.delete_by_contact("ct_eve")
    await index.commit()
    assert await ids(index, SearchQuery()) == ["ix_00002"]
    assert await index.count() == 1


async def test_clear_removes_everything(index: SearchIndex) -> None:
    await index.upsert([make_doc(n) for n in range(5)])
    await index.commit()
    await index.clear()
    assert await index.count() == 0
    assert (await index.search(SearchQuery())).total == 0


async def test_words_are_anded_phrases_ordered_and_minus_excludes(index: SearchIndex) -> None:
    await index.upsert([
        make_doc(1, text="refund request for invoice 42"),
        make_doc(2, text="request a refund please"),
        make_doc(3, text="refund only"),
        make_doc(4, text="nothing relevant", subject="Refund request"),
    ])
    await index.commit()
    assert sorted(await ids(index, SearchQuery(text="refund request"))) == [
        "ix_00001", "ix_00002", "ix_00004"]
    assert sorted(await ids(index, SearchQuery(text='"refund request"'))) == [
        "ix_00001", "ix_00004"]
    assert sorted(await ids(index, SearchQuery(text="refund -request"))) == ["ix_00003"]
    assert sorted(await ids(index, SearchQuery(text='refund -"request a"'))) == [
        "ix_00001", "ix_00003", "ix_00004"]


async def test_hostile_query_text_is_treated_as_words(index: SearchIndex) -> None:
    await index.upsert([make_doc(1, text="channel voice AND stuff"), make_doc(2, text="other")])
    await index.commit()
    for text in ['channel:voice', 'voice AND (', '"voice and', 'voice \\', '*:*', '---']:
        found = sorted(await ids(index, SearchQuery(text=text)))
        assert found in (["ix_00001"], ["ix_00001", "ix_00002"]), text
    assert await ids(index, SearchQuery(text="channel:voice")) == ["ix_00001"]
    assert sorted(await ids(index, SearchQuery(text="---"))) == ["ix_00001", "ix_00002"]


@pytest.mark.parametrize(("filters", "expected"), [
    (SearchFilters(channels=frozenset({"voice", "sms"})), [2, 3]),
    (SearchFilters(queues=frozenset({"sales"})), [3]),
    (SearchFilters(agents=frozenset({"ag_dan"})), [2, 4]),
    (SearchFilters(contacts=frozenset({"ct_eve"})), [4]),
    (SearchFilters(conversations=frozenset({"cv_00000"})), [1]),
    (SearchFilters(directions=frozenset({"outbound"})), [3]),
    (SearchFilters(kinds=frozenset({"note"})), [4]),
    (SearchFilters(has_recording=True), [2]),
    (SearchFilters(has_recording=False), [1, 3, 4]),
    (SearchFilters(qa_min=5.0), [2, 3]),
    (SearchFilters(qa_min=2.0, qa_max=6.0), [3]),
    (SearchFilters(qa_max=10.0), [2, 3]),
    (SearchFilters(at_from=T0 + timedelta(minutes=2)), [2, 3, 4]),
    (SearchFilters(at_from=T0 + timedelta(minutes=2), at_to=T0 + timedelta(minutes=4)), [2, 3]),
    (SearchFilters(channels=frozenset({"voice", "sms"}), agents=frozenset({"ag_dan"})), [2]),
])
async def test_filters(index: SearchIndex, filters: SearchFilters, expected: list[int]) -> None:
    await index.upsert([
        make_doc(1, text="hello one"),
        make_doc(2, text="hello two", channel="voice", agent="ag_dan", has_recording=True,
                 qa_score=8.5),
        make_doc(3, text="hello three", channel="sms", queue="sales", direction="outbound",
                 qa_score=5.0),
        make_doc(4, text="hello four", contact_id="ct_eve", kind="note", agent="ag_dan"),
    ])
    await index.commit()
    for text in ("", "hello"):
        got = await ids(index, SearchQuery(text=text, filters=filters, sort=Sort.TIME_ASC))
        assert got == [f"ix_{n:05d}" for n in expected], text


async def test_visibility_restricts_hits_totals_and_facets(index: SearchIndex) -> None:
    await index.upsert([
        make_doc(1, queue="billing", agent="ag_a"),
        make_doc(2, queue="sales", agent="ag_b"),
        make_doc(3, queue="sales", agent="ag_a"),
        make_doc(4, queue=None, agent="ag_c"),
    ])
    await index.commit()
    facets = frozenset({"queue", "agent"})
    own = await index.search(SearchQuery(visibility=Visibility(agents=frozenset({"ag_a"})),
                                         facets=facets, sort=Sort.TIME_ASC))
    assert [h.id for h in own.hits] == ["ix_00001", "ix_00003"] and own.total == 2
    assert dict(own.facets["agent"]) == {"ag_a": 2}
    assert dict(own.facets["queue"]) == {"billing": 1, "sales": 1}
    union = Visibility(queues=frozenset({"sales"}), agents=frozenset({"ag_c"}))
    assert sorted(await ids(index, SearchQuery(visibility=union))) == [
        "ix_00002", "ix_00003", "ix_00004"]
    nothing = await index.search(SearchQuery(visibility=Visibility(queues=frozenset())))
    assert nothing.hits == () and nothing.total == 0
    assert len(await ids(index, SearchQuery(visibility=Visibility()))) == 4


async def test_facet_counts_follow_query_and_are_ordered(index: SearchIndex) -> None:
    channels = ["voice", "voice", "voice", "sms", "sms", "email"]
    await index.upsert([make_doc(n, channel=c, text="refund" if n < 5 else "other",
                                 direction="inbound" if n % 2 else "outbound")
                        for n, c in enumerate(channels)])
    await index.commit()
    everything = await index.search(SearchQuery(facets=frozenset({"channel", "direction"})))
    assert list(everything.facets["channel"].items()) == [("voice", 3), ("sms", 2), ("email", 1)]
    assert dict(everything.facets["direction"]) == {"inbound": 3, "outbound": 3}
    refunds = await index.search(SearchQuery(text="refund", facets=frozenset({"channel"})))
    assert list(refunds.facets["channel"].items()) == [("voice", 3), ("sms", 2)]
    assert set(refunds.facets) == {"channel"}
    top1 = await index.search(SearchQuery(facets=frozenset({"channel"}), facet_size=1))
    assert dict(top1.facets["channel"]) == {"voice": 3}


async def test_time_order_and_relevance_order(index: SearchIndex) -> None:
    await index.upsert([
        make_doc(1, text="invoice mentioned once among many other words here", at=T0),
        make_doc(2, text="invoice invoice invoice", subject="Invoice", at=T0 + timedelta(1)),
        make_doc(3, text="unrelated", at=T0 + timedelta(2)),
    ])
    await index.commit()
    assert await ids(index, SearchQuery(sort=Sort.TIME_DESC)) == [
        "ix_00003", "ix_00002", "ix_00001"]
    assert await ids(index, SearchQuery(sort=Sort.TIME_ASC)) == [
        "ix_00001", "ix_00002", "ix_00003"]
    ranked = await index.search(SearchQuery(text="invoice"))
    assert [h.id for h in ranked.hits] == ["ix_00002", "ix_00001"]
    scores = [h.score for h in ranked.hits]
    assert all(s is not None for s in scores) and scores[0] >= scores[1]  # type: ignore[operator]
    timed = await index.search(SearchQuery(text="invoice", sort=Sort.TIME_DESC))
    assert [h.score for h in timed.hits] == [None, None]
    # relevance without text is meaningless: newest first
    assert await ids(index, SearchQuery(sort=Sort.RELEVANCE)) == [
        "ix_00003", "ix_00002", "ix_00001"]


@pytest.mark.parametrize("sort", list(Sort))
async def test_cursor_pagination_visits_each_hit_once(index: SearchIndex, sort: Sort) -> None:
    # 7 documents share one millisecond, so time order must break ties stably
    docs = [make_doc(n, text=f"common word{n % 3}",
                     at=T0 + timedelta(seconds=n // 7 if n < 30 else n)) for n in range(45)]
    await index.upsert(docs)
    await index.commit()
    seen, totals = await all_pages(index, SearchQuery(text="common", sort=sort, limit=4))
    assert sorted(seen) == sorted(d.id for d in docs)
    assert set(totals) == {45}
    if sort is Sort.TIME_ASC:
        order = sorted(docs, key=lambda d: d.at)
        assert [d.at for d in order] == [next(x.at for x in docs if x.id == i) for i in seen]


async def test_cursor_is_bound_to_its_query(index: SearchIndex) -> None:
    await index.upsert([make_doc(n, text="alpha") for n in range(5)])
    await index.commit()
    first = await index.search(SearchQuery(text="alpha", limit=2))
    assert first.next_cursor is not None
    with pytest.raises(InvalidQueryError) as err:
        await index.search(SearchQuery(text="beta", limit=2, cursor=first.next_cursor))
    assert err.value.field == "cursor"
    with pytest.raises(InvalidQueryError):
        await index.search(SearchQuery(text="alpha", cursor="not-a-cursor"))
    second = await index.search(SearchQuery(text="alpha", limit=2, cursor=first.next_cursor))
    assert {h.id for h in second.hits}.isdisjoint({h.id for h in first.hits})


async def test_highlights_mark_matches_and_escape_html(index: SearchIndex) -> None:
    await index.upsert([make_doc(1, subject="Billing <urgent>",
                                 text="<script>x</script> the refund & more")])
    await index.commit()
    hit = (await index.search(SearchQuery(text="refund"))).hits[0]
    assert set(hit.highlights) == {"text"}  # the subject has no match: no snippet
    snippet = hit.highlights["text"]
    assert "<mark>refund</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "<script>" not in snippet and "&amp;" in snippet
    both = (await index.search(SearchQuery(text="billing refund"))).hits[0]
    assert both.highlights["subject"].startswith("<mark>Billing</mark> &lt;urgent&gt;")
    plain = (await index.search(SearchQuery(text="refund", highlight=False))).hits[0]
    assert dict(plain.highlights) == {}


async def test_long_text_snippet_is_cut_around_the_match(index: SearchIndex) -> None:
    text = " ".join(["filler"] * 300 + ["needle"] + ["tail"] * 300)
    await index.upsert([make_doc(1, text=text)])
    await index.commit()
    snippet = (await index.search(SearchQuery(text="needle"))).hits[0].highlights["text"]
    assert "<mark>needle</mark>" in snippet
    assert len(snippet) < len(text) // 3


async def test_each_commit_becomes_visible_to_the_next_search(index: SearchIndex) -> None:
    await index.upsert([make_doc(1, text="fresh")])
    await index.commit()
    assert await ids(index, SearchQuery(text="fresh")) == ["ix_00001"]
    await index.upsert([make_doc(2, text="fresh too")])
    await index.commit()
    assert sorted(await ids(index, SearchQuery(text="fresh"))) == ["ix_00001", "ix_00002"]
