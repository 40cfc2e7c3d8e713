"""Priority first, then arrival order; a higher priority never waits behind a lower one."""

from __future__ import annotations

from routing import Assign, QueueConfig, SkillReq, WorkFinished

from .helpers import login, of_type, only_offer, queue, router, take


def test_fifo_within_priority_and_priority_first() -> None:
    r = router()
    queue(r, "old-low", 1, priority=0)
    queue(r, "new-low", 2, priority=0)
    queue(r, "high", 3, priority=5)
    order = []
    cmds = login(r, "a", 4)
    for t in range(5, 8):
        offer = only_offer(cmds) if cmds else None
        if offer is None:
            break
        order.append(offer.work_id)
        take(r, [offer], t)
        cmds = r.handle(WorkFinished(offer.work_id, t + 0.5))
    assert order == ["high", "old-low", "new-low"]


def test_higher_priority_in_other_queue_is_taken_first_by_shared_agent() -> None:
    r = router(QueueConfig("sales", (SkillReq("en", 1),)),
               QueueConfig("vip", (SkillReq("en", 3),)))
    queue(r, "s1", 1, queue_id="sales", priority=0)
    queue(r, "v1", 2, queue_id="vip", priority=2)
    login(r, "a", 3, {"en": 4})
    assert r.work("v1").agent_id == "a"  # type: ignore[union-attr]
    assert r.work("s1").status == "waiting"  # type: ignore[union-attr]


def test_priority_ties_break_on_arrival_across_queues() -> None:
    r = router(QueueConfig("a"), QueueConfig("b"))
    queue(r, "b-first", 1, queue_id="b")
    queue(r, "a-second", 2, queue_id="a")
    login(r, "x", 3)
    assert r.work("b-first").agent_id == "x"  # type: ignore[union-attr]


def test_agents_who_cannot_take_the_high_item_still_serve_lower_ones() -> None:
    r = router(QueueConfig("basic"), QueueConfig("expert", (SkillReq("legal", 4),)))
    queue(r, "urgent", 1, queue_id="expert", priority=9)
    queue(r, "normal", 2, queue_id="basic", priority=0)
    cmds = login(r, "junior", 3, {"legal": 1})
    assert only_offer(cmds).work_id == "normal"  # the urgent item is not for junior
    assigned = of_type(take(r, cmds, 4), Assign)
    assert [a.work_id for a in assigned] == ["normal"]
