"""Work lifecycle edges: withdrawal, unknown ids, queue (re)configuration, audit reasons."""

from __future__ import annotations

import pytest

from routing import (
    OfferAccepted,
    OverflowAction,
    OverflowStep,
    Presence,
    PresenceChanged,
    QueueConfig,
    QueueConfigured,
    RevokeOffer,
    SkillReq,
    SkillsChanged,
    Tick,
    UnknownQueue,
    UnknownWork,
    WorkFinished,
    WorkWithdrawn,
)

from .helpers import login, of_type, offers, only_offer, queue, router, take


def test_withdrawn_while_offered_revokes_and_frees_agent() -> None:
    r = router()
    login(r, "a", 0)
    offer = only_offer(queue(r, "w1", 1))
    queue(r, "w2", 2)
    cmds = r.handle(WorkWithdrawn("w1", 3, "caller hung up"))
    [revoke] = of_type(cmds, RevokeOffer)
    assert revoke.offer_id == offer.offer_id and "caller hung up" in revoke.reason.text
    assert only_offer(cmds).work_id == "w2"
    assert r.handle(OfferAccepted(offer.offer_id, 4))[0].reason.rule == "not_live"


def test_withdrawn_waiting_item_is_never_offered() -> None:
    r = router()
    queue(r, "w", 1)
    r.handle(WorkWithdrawn("w", 2))
    assert offers(login(r, "a", 3)) == []
    assert r.snapshot().queues[0].depth == 0


def test_unknown_work_and_queue_are_errors() -> None:
    r = router()
    with pytest.raises(UnknownWork):
        r.handle(WorkFinished("nope", 1))
    with pytest.raises(UnknownQueue):
        queue(r, "w", 1, queue_id="nope")
    assert r.work("w") is None  # nothing half-registered


def test_queue_added_at_runtime_routes_to_existing_agents() -> None:
    r = router()
    login(r, "a", 0, {"de": 3})
    r.handle(QueueConfigured(QueueConfig("german", (SkillReq("de", 2),)), 1))
    assert only_offer(queue(r, "w", 2, queue_id="german")).agent_id == "a"


def test_reconfigured_queue_relanes_waiting_items() -> None:
    r = router(QueueConfig("q", (SkillReq("x", 5),)))
    login(r, "a", 0, {"x": 2})
    queue(r, "w", 1)
    cmds = r.handle(QueueConfigured(QueueConfig("q", (SkillReq("x", 2),)), 2))
    assert only_offer(cmds).agent_id == "a"


def test_agent_side_reason_names_chosen_item_and_runner_up() -> None:
    r = router(QueueConfig("a"), QueueConfig("b"))
    queue(r, "low", 1, queue_id="a", priority=0)
    queue(r, "high", 2, queue_id="b", priority=1)
    offer = only_offer(login(r, "x", 3))
    assert offer.work_id == "high" and offer.reason.rule == "priority_fifo"
    assert offer.reason.considered == 2
    assert [c.id for c in offer.reason.candidates] == ["high", "low"]
    assert [c.note for c in offer.reason.candidates] == ["chosen", "runner-up"]


def test_finished_work_leaves_router_and_frees_capacity() -> None:
    r = router()
    login(r, "a", 0)
    take(r, queue(r, "w", 1), 1)
    assert r.agent("a").work_ids == ("w",)  # type: ignore[union-attr]
    r.handle(WorkFinished("w", 2))
    assert r.work("w") is None and r.agent("a").work_ids == ()  # type: ignore[union-attr]
    assert r.snapshot().work_in_routing == 0


def test_skills_change_makes_agent_eligible_or_not() -> None:
    r = router(QueueConfig("q", (SkillReq("jp", 2),)))
    login(r, "a", 0, {"jp": 1})
    queue(r, "w1", 1)
    cmds = r.handle(SkillsChanged("a", {"jp": 3}, 2))
    assert only_offer(cmds).work_id == "w1"
    take(r, cmds, 2)
    r.handle(SkillsChanged("a", {}, 3))
    r.handle(WorkFinished("w1", 4))
    assert offers(queue(r, "w2", 5)) == []


def test_overflow_to_unknown_queue_is_void() -> None:
    steps = (OverflowStep(10, OverflowAction.ADD_QUEUE, queue_id="missing"),)
    r = router(QueueConfig("q", (SkillReq("x", 1),), overflow=steps))
    queue(r, "w", 0)
    assert r.handle(Tick(10)) == []
    assert r.work("w").overflow_done == 1  # type: ignore[union-attr]


def test_manual_wrap_up_lasts_until_agent_is_ready() -> None:
    r = router()
    login(r, "a", 0)
    r.handle(PresenceChanged("a", Presence.WRAP_UP, 1))
    assert offers(queue(r, "w", 2)) == [] and r.next_deadline() is None
    assert only_offer(r.handle(PresenceChanged("a", Presence.READY, 3))).work_id == "w"


def test_parked_item_goes_to_preferred_agent_logging_in_within_window() -> None:
    r = router()
    login(r, "other", 0, presence=Presence.NOT_READY)
    queue(r, "w", 1, preferred_agent="fav", preferred_window_s=30)
    cmds = login(r, "fav", 10)
    offer = only_offer(cmds)
    assert (offer.agent_id, offer.reason.rule) == ("fav", "preferred_agent")
