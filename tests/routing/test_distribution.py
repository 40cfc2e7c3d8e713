"""Who gets the offer: skills with minimum levels and the four distribution modes."""

from __future__ import annotations

from routing import (
    Capacity,
    Medium,
    Mode,
    OfferAccepted,
    Presence,
    PresenceChanged,
    QueueConfig,
    SkillReq,
    WorkFinished,
)

from .helpers import login, offers, only_offer, queue, router, take


def test_skill_minimum_level_decides_eligibility() -> None:
    r = router(QueueConfig("q", (SkillReq("fr", 3),)))
    login(r, "novice", 0, {"fr": 2})
    login(r, "no-skill", 1, {})
    assert offers(queue(r, "w", 2)) == []
    login(r, "expert", 3, {"fr": 4})  # an eligible agent arriving takes the waiting item
    view = r.work("w")
    assert view is not None and view.agent_id == "expert"


def test_longest_idle_agent_wins() -> None:
    r = router(QueueConfig("q"))
    for i in range(3):
        login(r, f"a{i}", float(i))
    r.handle(PresenceChanged("a0", Presence.NOT_READY, 5, "break"))
    r.handle(PresenceChanged("a0", Presence.READY, 6))  # idle since 6 now
    offer = only_offer(queue(r, "w", 10))
    assert offer.agent_id == "a1"
    assert offer.reason.rule == "longest_idle"
    assert offer.reason.considered == 3
    assert offer.reason.candidates[0].id == "a1"
    assert "a1" in offer.reason.text


def test_idle_clock_restarts_when_work_finishes() -> None:
    r = router(QueueConfig("q"))
    login(r, "a", 0)
    login(r, "b", 1)
    take(r, queue(r, "w1", 2), 2)  # a (idle since 0) takes it
    r.handle(WorkFinished("w1", 3))  # a is idle since 3 now, b since 1
    assert only_offer(queue(r, "w2", 4)).agent_id == "b"


def test_round_robin_cycles_through_agents() -> None:
    r = router(QueueConfig("q", mode=Mode.ROUND_ROBIN))
    for name in ("a", "b", "c"):
        login(r, name, 0)
    got = []
    for i in range(6):
        offer = only_offer(queue(r, f"w{i}", i + 1))
        got.append(offer.agent_id)
        r.handle(OfferAccepted(offer.offer_id, i + 1))
        r.handle(WorkFinished(f"w{i}", i + 1.5))  # finishing would reset a longest-idle clock
    assert len(set(got[:3])) == 3 and got[3:] == got[:3]


def test_least_busy_prefers_fewest_open_items() -> None:
    r = router(QueueConfig("q", mode=Mode.LEAST_BUSY))
    chat = Capacity({Medium.WEBCHAT: 3})
    login(r, "a", 0, capacity=chat)  # longest idle, but will hold two chats
    login(r, "b", 1, capacity=chat)
    take(r, queue(r, "w1", 2, medium=Medium.WEBCHAT), 2)
    take(r, queue(r, "w2", 2, medium=Medium.WEBCHAT), 2)
    loads = {a: len(r.agent(a).work_ids) for a in ("a", "b")}  # type: ignore[union-attr]
    assert loads == {"a": 1, "b": 1}
    r.handle(WorkFinished("w1", 3) if r.work("w1").agent_id == "b"  # type: ignore[union-attr]
             else WorkFinished("w2", 3))  # now b holds nothing, a holds one
    offer = only_offer(queue(r, "w3", 4, medium=Medium.WEBCHAT))
    assert offer.agent_id == "b" and offer.reason.rule == "least_busy"


def test_skill_level_first_prefers_best_skilled() -> None:
    reqs = (SkillReq("billing", 1), SkillReq("de", 1))
    r = router(QueueConfig("q", reqs, mode=Mode.SKILL_LEVEL))
    login(r, "ok", 0, {"billing": 2, "de": 2})
    login(r, "best", 5, {"billing": 5, "de": 4})
    login(r, "mid", 1, {"billing": 3, "de": 3})
    offer = only_offer(queue(r, "w", 10))
    assert offer.agent_id == "best"
    assert offer.reason.candidates[0].key[0] == -9  # summed levels, negated (smallest wins)


def test_queues_with_equal_requirements_share_agents_but_keep_their_mode() -> None:
    r = router(QueueConfig("li"), QueueConfig("rr", mode=Mode.ROUND_ROBIN))
    login(r, "a", 0)
    login(r, "b", 1)
    assert only_offer(queue(r, "w1", 2, queue_id="li")).agent_id == "a"
    assert only_offer(queue(r, "w2", 2, queue_id="rr")).agent_id == "b"
