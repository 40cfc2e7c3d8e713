"""QA scorecards through the real hub under uvicorn, on SQLite and PostgreSQL: form versions,
weighted scores with n/a, roles, trend buckets, and scores reaching search (``qa_min``)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from channels.base import ChannelKind
from hub.actions.qa import Criterion, weighted_score
from hub.db.models import Conversation, QaEvaluation
from hub.domain import Role
from hub.search.maintenance import purge_contact
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import RunningHub, running_hub

FORM = {
    "name": "Call quality",
    "description": "How the call went",
    "criteria": [
        {"key": "greeting", "label": "Greeting", "weight": 2, "kind": "scale", "max": 5},
        {"key": "resolved", "label": "Resolved", "weight": 1, "kind": "yes_no"},
        {"key": "upsell", "label": "Upsell", "weight": 1, "kind": "scale", "max": 4},
        {
            "key": "compliance",
            "label": "Read the disclosure",
            "weight": 1,
            "kind": "yes_no",
            "na_allowed": False,
        },
    ],
}


async def call(hub: RunningHub, role: Role, method: str, path: str, want: int, **kw: Any) -> Any:
    async with hub.client(role) as c:
        r = await c.request(method, path, **kw)
    assert r.status_code == want, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


async def assigned_conversation(
    hub: RunningHub, db: Db, ext: str, text: str, sender: str = "+15550001234"
) -> str:
    """An SMS conversation handled by agent@t.test."""
    receipt = await hub.services.ingestor(inbound(ChannelKind.SMS, sender, ext, text))
    async with db.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.id == receipt.conversation_id)
            .values(assignee_id=hub.agent_ids["agent@t.test"])
        )
    return receipt.conversation_id


def answers(**kw: Any) -> dict[str, Any]:
    return {"greeting": 5, "resolved": "yes", "upsell": 4, "compliance": "yes", **kw}


async def test_forms_are_versioned_and_evaluations_keep_theirs(db: Db) -> None:
    async with running_hub(db) as hub:
        await call(hub, Role.QA, "POST", "/api/qa/forms", 403, json=FORM)
        await call(hub, Role.AGENT, "POST", "/api/qa/forms", 403, json=FORM)
        v1 = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        assert v1["version"] == 1 and v1["criteria"][0]["description"] == ""
        conv = await assigned_conversation(hub, db, "v1", "hello")
        body = {"form_id": v1["id"], "conversation_id": conv, "answers": answers(greeting=0)}
        ev1 = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=body)
        assert ev1["form_version"] == 1

        edited = {**FORM, "name": "Call quality 2027", "criteria": FORM["criteria"][:2]}
        v2 = await call(hub, Role.ADMIN, "PUT", f"/api/qa/forms/{v1['id']}", 200, json=edited)
        assert (v2["id"], v2["version"], v2["name"]) == (v1["id"], 2, "Call quality 2027")
        old = await call(hub, Role.QA, "GET", f"/api/qa/forms/{v1['id']}?version=1", 200)
        assert len(old["criteria"]) == 4 and old["name"] == "Call quality"
        listed = await call(hub, Role.AGENT, "GET", "/api/qa/forms", 200)
        assert [(f["id"], f["version"]) for f in listed["items"]] == [(v1["id"], 2)]

        # the v1 evaluation still reads as v1 with its own answers; new ones use v2's criteria
        got = await call(hub, Role.QA, "GET", f"/api/qa/evaluations/{ev1['id']}", 200)
        assert (got["form_version"], got["form_name"], got["score"]) == (1, "Call quality", 60.0)
        stale = {**body, "answers": answers()}
        err = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 422, json=stale)
        assert err["data"]["field"] in {"answers.upsell", "answers.compliance"}
        fresh = {**body, "answers": {"greeting": 5, "resolved": "no"}}
        ev2 = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=fresh)
        assert (ev2["form_version"], ev2["score"]) == (2, 66.67)

        await call(hub, Role.SUPERVISOR, "DELETE", f"/api/qa/forms/{v1['id']}", 200)
        assert (await call(hub, Role.QA, "GET", "/api/qa/forms", 200))["items"] == []
        err = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 422, json=fresh)
        assert err["code"] == "form_archived"
        err = await call(
            hub,
            Role.SUPERVISOR,
            "POST",
            "/api/qa/forms",
            422,
            json={**FORM, "criteria": [FORM["criteria"][0], FORM["criteria"][0]]},
        )
        assert "unique" in err["message"]


async def test_weighted_score_with_na_and_precise_errors(db: Db) -> None:
    async with running_hub(db) as hub:
        form = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        conv = await assigned_conversation(hub, db, "w1", "hello")

        async def score(want: int, **kw: Any) -> Any:
            body = {"form_id": form["id"], "conversation_id": conv, "answers": answers(**kw)}
            return await call(hub, Role.QA, "POST", "/api/qa/evaluations", want, json=body)

        # greeting 4/5*2 + resolved 1 + upsell n/a + compliance 0 -> 2.6 of weight 4
        assert (await score(201, greeting=4, upsell="na", compliance="no"))["score"] == 65.0
        assert (await score(201))["score"] == 100.0
        assert (await score(201, greeting=0, resolved="no", upsell=0, compliance="no"))[
            "score"
        ] == 0.0
        assert (await score(422, compliance="na"))["data"]["field"] == "answers.compliance"
        assert (await score(422, greeting=6))["data"]["field"] == "answers.greeting"
        assert (await score(422, greeting=True))["data"]["field"] == "answers.greeting"
        assert (await score(422, resolved="maybe"))["data"]["field"] == "answers.resolved"
        assert (await score(422, bogus=1))["data"]["field"] == "answers.bogus"
        body = {"form_id": form["id"], "conversation_id": conv, "answers": {"greeting": 1}}
        err = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 422, json=body)
        assert err["data"]["field"] == "answers.resolved" and err["code"] == "invalid_answer"
        body = {"form_id": form["id"], "conversation_id": "cv_nope", "answers": answers()}
        await call(hub, Role.QA, "POST", "/api/qa/evaluations", 404, json=body)


@given(
    st.lists(
        st.tuples(st.integers(1, 10), st.integers(1, 5), st.integers(0, 5) | st.just(-1)),
        min_size=1,
        max_size=8,
    )
)
def test_score_is_the_weighted_mean_of_answered_criteria(spec: list[tuple[int, int, int]]) -> None:
    criteria = [
        Criterion(key=f"c{i}", label="c", weight=w, max=m) for i, (w, m, _) in enumerate(spec)
    ]
    raw = {f"c{i}": ("na" if v < 0 else min(v, m)) for i, (_, m, v) in enumerate(spec)}
    answered = [(w, min(v, m) / m) for w, m, v in spec if v >= 0]
    if not answered:
        with pytest.raises(Exception, match="n/a"):
            weighted_score(criteria, raw)
        return
    expected = 100 * sum(w * x for w, x in answered) / sum(w for w, _ in answered)
    got = weighted_score(criteria, raw)
    assert 0 <= got <= 100 and abs(got - expected) <= 0.005 + 1e-9  # rounded to 2 decimals


async def test_roles_agents_see_only_their_own(db: Db) -> None:
    async with running_hub(db) as hub:
        form = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        mine = await assigned_conversation(hub, db, "r1", "hello")
        other = (
            await hub.services.ingestor(inbound(ChannelKind.SMS, "+15550009", "r2"))
        ).conversation_id
        base = {"form_id": form["id"], "answers": answers()}
        await call(
            hub,
            Role.AGENT,
            "POST",
            "/api/qa/evaluations",
            403,
            json={**base, "conversation_id": mine},
        )
        err = await call(
            hub,
            Role.QA,
            "POST",
            "/api/qa/evaluations",
            422,
            json={**base, "conversation_id": other},
        )
        assert err["code"] == "no_agent"
        ev_mine = await call(
            hub, Role.QA, "POST", "/api/qa/evaluations", 201, json={**base, "conversation_id": mine}
        )
        assert ev_mine["agent_id"] == hub.agent_ids["agent@t.test"]
        ev_other = await call(
            hub,
            Role.SUPERVISOR,
            "POST",
            "/api/qa/evaluations",
            201,
            json={**base, "conversation_id": other, "agent_id": hub.agent_ids["agent2@t.test"]},
        )
        seen = await call(hub, Role.AGENT, "GET", "/api/qa/evaluations?agent=me", 200)
        assert [e["id"] for e in seen["items"]] == [ev_mine["id"]]
        seen = await call(hub, Role.AGENT, "GET", "/api/qa/evaluations", 200)
        assert [e["id"] for e in seen["items"]] == [ev_mine["id"]]
        agent2 = hub.agent_ids["agent2@t.test"]
        await call(hub, Role.AGENT, "GET", f"/api/qa/evaluations?agent={agent2}", 404)
        await call(hub, Role.AGENT, "GET", f"/api/qa/evaluations/{ev_other['id']}", 404)
        await call(hub, Role.AGENT, "GET", f"/api/qa/agents/{agent2}/trend", 404)
        await call(hub, Role.AGENT, "GET", "/api/qa/agents/me/trend", 200)
        await call(hub, Role.AGENT, "GET", "/api/qa/team", 403)
        await call(hub, Role.QA, "GET", "/api/qa/agents/me/trend", 400)  # QA is no agent
        every = await call(hub, Role.QA, "GET", "/api/qa/evaluations", 200)
        assert {e["id"] for e in every["items"]} == {ev_mine["id"], ev_other["id"]}
        async with hub.client() as anon:
            assert (await anon.get("/api/qa/evaluations")).status_code == 401


async def test_trend_buckets_and_team_overview(db: Db) -> None:
    async with running_hub(db) as hub:
        form = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        conv = await assigned_conversation(hub, db, "t1", "hello")
        agent = hub.agent_ids["agent@t.test"]
        # Monday 2026-11-02 week: 100 and 50; week of 11-16: 0; 11-09 week empty
        plan = [
            (datetime(2026, 11, 2, 9, tzinfo=UTC), answers()),
            (datetime(2026, 11, 8, 23, tzinfo=UTC), answers(greeting=0, upsell=0)),
            (
                datetime(2026, 11, 16, 0, tzinfo=UTC),
                answers(greeting=0, resolved="no", upsell=0, compliance="no"),
            ),
        ]
        for at, given_answers in plan:
            body = {"form_id": form["id"], "conversation_id": conv, "answers": given_answers}
            ev = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=body)
            async with db.sessions() as s, s.begin():
                await s.execute(
                    update(QaEvaluation).where(QaEvaluation.id == ev["id"]).values(created_at=at)
                )
        params = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-20T00:00:00Z", "bucket": "week"}
        trend = await call(hub, Role.QA, "GET", f"/api/qa/agents/{agent}/trend", 200, params=params)
        assert [(p["start"][:10], p["average"], p["count"]) for p in trend["points"]] == [
            ("2026-10-26", None, 0),
            ("2026-11-02", 70.0, 2),  # 100 and (2*0+1+0+1)/5 = 40
            ("2026-11-09", None, 0),
            ("2026-11-16", 0.0, 1),
        ]
        assert (trend["average"], trend["count"]) == (46.67, 3)
        days = await call(
            hub,
            Role.AGENT,
            "GET",
            "/api/qa/agents/me/trend",
            200,
            params={**params, "bucket": "day"},
        )
        assert len(days["points"]) == 19 and sum(p["count"] for p in days["points"]) == 3
        month = await call(
            hub,
            Role.QA,
            "GET",
            f"/api/qa/agents/{agent}/trend",
            200,
            params={**params, "bucket": "month"},
        )
        assert [(p["start"][:10], p["count"]) for p in month["points"]] == [("2026-11-01", 3)]
        bad = {**params, "to": "2026-10-01T00:00:00Z"}
        err = await call(hub, Role.QA, "GET", f"/api/qa/agents/{agent}/trend", 400, params=bad)
        assert err["data"]["field"] == "to"
        team = await call(
            hub,
            Role.SUPERVISOR,
            "GET",
            "/api/qa/team",
            200,
            params={"from": params["from"], "to": params["to"]},
        )
        assert [
            (a["agent_id"], a["count"], a["average"], a["min"], a["max"]) for a in team["agents"]
        ] == [(agent, 3, 46.67, 0.0, 100.0)]
        assert team["agents"][0]["last_at"].startswith("2026-11-16T00:00:00")
        recent = await call(hub, Role.QA, "GET", "/api/qa/team", 200)  # default: last 12 weeks
        assert recent["count"] == (3 if datetime.now(UTC) - timedelta(weeks=12) < plan[0][0] else 0)


async def scored(hub: RunningHub, want: int, **params: Any) -> list[tuple[str, str, float]]:
    """``(conversation, kind, qa_score)`` of the hits of a QA-range search, sorted, once
    ``want`` docs match (the drainer is asynchronous)."""
    deadline = time.monotonic() + 5
    while True:
        body = await call(hub, Role.QA, "GET", "/api/search", 200, params=params)
        if body["total"] == want or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return sorted((h["conversation_id"], h["kind"], h["qa_score"]) for h in body["hits"])


async def test_score_reaches_search_and_the_timeline(db: Db) -> None:
    async with running_hub(db) as hub:
        form = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        good = await assigned_conversation(hub, db, "s1", "thanks for the quick refund")
        bad = await assigned_conversation(hub, db, "s2", "refund missing", "+15550005678")
        assert good != bad
        for conv, given_answers in ((good, answers()), (bad, answers(greeting=1, upsell=0))):
            body = {"form_id": form["id"], "conversation_id": conv, "answers": given_answers}
            await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=body)
        # every interaction of a scored conversation carries its score, not just the QA note
        assert await scored(hub, 2, qa_min=90) == [(good, "note", 100.0), (good, "sms", 100.0)]
        assert await scored(hub, 2, qa_max=50) == [(bad, "note", 48.0), (bad, "sms", 48.0)]
        high = await call(hub, Role.QA, "GET", "/api/search", 200, params={"qa_min": 90})
        assert {h["agent"] for h in high["hits"]} == {hub.agent_ids["agent@t.test"]}
        timeline = await call(hub, Role.QA, "GET", f"/api/conversations/{good}/interactions", 200)
        note = timeline["items"][-1]
        assert note["kind"] == "note" and note["payload"]["qa_score"] == 100.0
        assert note["text"].startswith("QA evaluation: 100/100")


async def test_rescoring_moves_the_whole_conversation_and_later_messages_inherit(db: Db) -> None:
    """The conversation score is its latest evaluation: a re-score re-labels every doc (through
    the outbox), and a message arriving after the evaluation is indexed with the score."""
    async with running_hub(db) as hub:
        form = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        conv = await assigned_conversation(hub, db, "r1", "my parcel is late")
        body = {"form_id": form["id"], "conversation_id": conv, "answers": answers()}
        await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=body)
        assert await scored(hub, 2, qa_min=90) == [(conv, "note", 100.0), (conv, "sms", 100.0)]

        await hub.services.ingestor(inbound(ChannelKind.SMS, "+15550001234", "r2", "any news?"))
        got = await scored(hub, 3, qa_min=90)
        assert got == [(conv, "note", 100.0), (conv, "sms", 100.0), (conv, "sms", 100.0)]

        low = {**body, "answers": answers(greeting=0, resolved="no", upsell=0)}
        await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=low)
        assert await scored(hub, 0, qa_min=90) == []
        # both notes and both messages now carry the latest score
        assert [k for _, k, s in await scored(hub, 4, qa_max=30) if s == 20.0] == [
            "note",
            "note",
            "sms",
            "sms",
        ]


async def test_purging_a_contact_erases_their_evaluations(db: Db) -> None:
    async with running_hub(db) as hub:
        form = await call(hub, Role.SUPERVISOR, "POST", "/api/qa/forms", 201, json=FORM)
        conv = await assigned_conversation(hub, db, "p1", "please forget me")
        body = {"form_id": form["id"], "conversation_id": conv, "answers": answers()}
        ev = await call(hub, Role.QA, "POST", "/api/qa/evaluations", 201, json=body)
        async with db.sessions() as s:
            contact_id = (await s.get(Conversation, conv)).contact_id  # type: ignore[union-attr]
        assert await purge_contact(db.sessions, None, contact_id) is not None
        await call(hub, Role.QA, "GET", f"/api/qa/evaluations/{ev['id']}", 404)
        agent = hub.agent_ids["agent@t.test"]
        trend = await call(hub, Role.QA, "GET", f"/api/qa/agents/{agent}/trend", 200)
        assert trend["count"] == 0
