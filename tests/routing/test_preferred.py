"""Preferred agent: a returning contact's last agent gets the first offer within a window."""

from __future__ import annotations

from routing import QueueConfig, Tick, WorkFinished

from .helpers import login, offers, only_offer, queue, router, take


def test_preferred_agent_gets_offer_even_if_not_longest_idle() -> None:
    r = router()
    login(r, "a", 0)
    login(r, "b", 5)
    offer = only_offer(queue(r, "w", 10, preferred_agent="b", preferred_window_s=60))
    assert offer.agent_id == "b" and offer.reason.rule == "preferred_agent"


def test_item_waits_for_busy_preferred_agent_within_window() -> None:
    r = router()
    login(r, "a", 0)
    login(r, "b", 1)
    take(r, queue(r, "first", 2, preferred_agent="b", preferred_window_s=60), 2)
    # b is busy; a is free but the item is reserved for b during the window
    assert offers(queue(r, "w", 3, preferred_agent="b", preferred_window_s=60)) == []
    offer = only_offer(r.handle(WorkFinished("first", 10)))
    assert (offer.agent_id, offer.work_id, offer.reason.rule) == ("b", "w", "preferred_agent")


def test_window_end_releases_item_to_everyone() -> None:
    r = router(QueueConfig("q", preferred_window_s=30))
    login(r, "a", 0)
    queue(r, "w", 1, preferred_agent="absent")  # queue default window: 30 s
    assert r.work("w").status == "parked"  # type: ignore[union-attr]
    assert r.next_deadline() == 31
    assert only_offer(r.handle(Tick(31))).agent_id == "a"


def test_expired_window_at_arrival_routes_normally() -> None:
    r = router()
    login(r, "a", 0)
    offer = only_offer(queue(r, "w", 5, preferred_agent="b", preferred_window_s=0))
    assert offer.agent_id == "a"
