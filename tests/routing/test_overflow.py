"""Overflow steps by waiting time: relax levels, add a queue, escalate, voicemail/callback."""

from __future__ import annotations

from routing import (
    Callback,
    Escalate,
    Medium,
    Overflow,
    OverflowAction,
    OverflowStep,
    QueueConfig,
    SkillReq,
    Tick,
    Voicemail,
)

from .helpers import login, of_type, offers, only_offer, queue, router


def test_relax_min_level_after_wait() -> None:
    q = QueueConfig("q", (SkillReq("es", 4),),
                    overflow=(OverflowStep(30, OverflowAction.RELAX, min_level=2),))
    r = router(q)
    login(r, "junior", 0, {"es": 2})
    assert offers(queue(r, "w", 1)) == []
    assert r.next_deadline() == 31
    cmds = r.handle(Tick(31))
    [step] = of_type(cmds, Overflow)
    assert (step.work_id, step.step, step.action) == ("w", 0, OverflowAction.RELAX)
    offer = only_offer(cmds)
    assert offer.agent_id == "junior" and "(overflow)" in offer.reason.text


def test_relaxed_item_still_prefers_primary_agents() -> None:
    q = QueueConfig("q", (SkillReq("es", 4),),
                    overflow=(OverflowStep(30, OverflowAction.RELAX, min_level=1),))
    r = router(q)
    login(r, "junior", 0, {"es": 1})
    queue(r, "w", 1)
    r.handle(Tick(31))  # relaxed: junior takes it
    assert r.work("w").agent_id == "junior"  # type: ignore[union-attr]


def test_add_second_tier_queue_keeps_first_tier_eligible() -> None:
    r = router(QueueConfig("t1", (SkillReq("a", 1),),
                           overflow=(OverflowStep(20, OverflowAction.ADD_QUEUE,
                                                  queue_id="t2"),)),
               QueueConfig("t2", (SkillReq("b", 1),)))
    login(r, "b-agent", 0, {"b": 1})
    queue(r, "w", 1, queue_id="t1")
    cmds = r.handle(Tick(21))
    assert of_type(cmds, Overflow)[0].queue_id == "t2"
    assert only_offer(cmds).agent_id == "b-agent"
    view = r.work("w")
    assert view is not None and view.queue_id == "t1"  # still t1's item


def test_escalate_moves_to_tier_queue() -> None:
    r = router(QueueConfig("l1", (SkillReq("x", 1),),
                           overflow=(OverflowStep(60, OverflowAction.ESCALATE, queue_id="l2",
                                                  tier=2),)),
               QueueConfig("l2", (SkillReq("senior", 1),)))
    queue(r, "w", 0, queue_id="l1")
    cmds = r.handle(Tick(60))
    [esc] = of_type(cmds, Escalate)
    assert (esc.queue_id, esc.tier) == ("l2", 2)
    assert r.work("w").queue_id == "l2"  # type: ignore[union-attr]
    login(r, "first-line", 61, {"x": 5})
    assert r.work("w").status == "waiting"  # type: ignore[union-attr]
    login(r, "senior", 62, {"senior": 1})
    assert r.work("w").agent_id == "senior"  # type: ignore[union-attr]
    depths = {q.queue_id: q.depth for q in r.snapshot().queues}
    assert depths == {"l1": 0, "l2": 1}


def test_voicemail_and_callback_for_voice_only() -> None:
    steps = (OverflowStep(120, OverflowAction.VOICEMAIL),)
    r = router(QueueConfig("q", overflow=steps))
    queue(r, "call", 0, medium=Medium.VOICE)
    queue(r, "mail", 0, medium=Medium.EMAIL)
    cmds = r.handle(Tick(120))
    assert [c.work_id for c in of_type(cmds, Voicemail)] == ["call"]
    assert r.work("call") is None and r.work("mail") is not None
    assert r.snapshot().queues[0].diverted == 1

    r2 = router(QueueConfig("q", overflow=(OverflowStep(5, OverflowAction.CALLBACK),)))
    queue(r2, "call", 0)
    assert [c.work_id for c in of_type(r2.handle(Tick(5)), Callback)] == ["call"]


def test_steps_apply_in_order_of_wait() -> None:
    steps = (OverflowStep(90, OverflowAction.VOICEMAIL),
             OverflowStep(30, OverflowAction.RELAX, min_level=1))
    r = router(QueueConfig("q", (SkillReq("s", 3),), overflow=steps))
    queue(r, "call", 0)
    assert [type(c) for c in r.handle(Tick(30))] == [Overflow]
    assert [type(c) for c in r.handle(Tick(90))] == [Voicemail]


def test_voicemail_while_offered_revokes_the_offer() -> None:
    r = router(QueueConfig("q", offer_ttl_s=100,
                           overflow=(OverflowStep(10, OverflowAction.VOICEMAIL),)))
    login(r, "a", 0)
    offer = only_offer(queue(r, "call", 1))
    cmds = r.handle(Tick(11))
    assert [type(c).__name__ for c in cmds] == ["RevokeOffer", "Voicemail"]
    assert cmds[0].offer_id == offer.offer_id  # type: ignore[union-attr]
    assert r.agent("a").offer_id is None  # type: ignore[union-attr]
