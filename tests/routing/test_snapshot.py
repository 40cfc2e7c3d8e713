"""Live queue state and service level."""

from __future__ import annotations

from routing import (
    Capacity,
    Medium,
    OfferAccepted,
    QueueConfig,
    ServiceLevelReset,
    Tick,
    WorkFinished,
    WorkWithdrawn,
)

from .helpers import login, only_offer, queue, router


def test_depth_oldest_wait_and_agents() -> None:
    r = router(QueueConfig("q"))
    login(r, "busy", 0)
    login(r, "chatty", 0, capacity=Capacity({Medium.WEBCHAT: 2}))
    r.handle(OfferAccepted(only_offer(queue(r, "call1", 1)).offer_id, 1))
    queue(r, "call2", 2)
    queue(r, "call3", 4)
    r.handle(OfferAccepted(only_offer(queue(r, "chat", 5, medium=Medium.WEBCHAT)).offer_id, 5))
    r.handle(Tick(10))
    [q] = r.snapshot().queues
    assert q.depth == 2
    assert q.oldest_wait_s == 8
    assert q.agents_busy == 2  # both hold work
    assert q.agents_ready == 1  # chatty can take another chat


def test_service_level_counts_answers_within_target() -> None:
    r = router(QueueConfig("q", sl_target_s=20, offer_ttl_s=100))
    login(r, "a", 0)
    o = only_offer(queue(r, "fast", 0))
    r.handle(OfferAccepted(o.offer_id, 5))  # waited 5 s
    r.handle(WorkFinished("fast", 6))
    queue(r, "slow", 0)  # arrival 0, the clock is at 6
    o2 = r.work("slow")
    assert o2 is not None and o2.offer_id is not None
    r.handle(OfferAccepted(o2.offer_id, 30))  # waited 30 s
    queue(r, "gone", 31)
    r.handle(WorkWithdrawn("gone", 33))  # abandoned after 2 s
    [q] = r.snapshot().queues
    assert (q.answered, q.answered_in_target, q.abandoned, q.abandoned_in_target) == (2, 1, 1, 1)
    assert q.service_level == 0.5
    r.handle(ServiceLevelReset(40))
    [q] = r.snapshot().queues
    assert (q.answered, q.service_level) == (0, None)
