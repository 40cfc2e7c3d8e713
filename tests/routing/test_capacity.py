"""Capacity per medium, exclusive voice, cost budget; offers in flight count as held."""

from __future__ import annotations

import pytest

from routing import (
    Capacity,
    CapacityChanged,
    ConfigError,
    Medium,
    OfferAccepted,
    QueueConfig,
    RevokeOffer,
    Router,
    WorkFinished,
)

from .helpers import login, of_type, offers, only_offer, queue, router, take

BLENDED = Capacity({Medium.VOICE: 1, Medium.WEBCHAT: 3, Medium.EMAIL: 5})


def held(r: Router, agent_id: str) -> dict[Medium, int]:
    view = r.agent(agent_id)
    assert view is not None
    return dict(view.held)


def test_three_chats_and_five_emails_at_most() -> None:
    r = router()
    login(r, "a", 0, capacity=BLENDED)
    for i in range(5):
        take(r, queue(r, f"c{i}", 1, medium=Medium.WEBCHAT), 1)
    for i in range(7):
        take(r, queue(r, f"e{i}", 2, medium=Medium.EMAIL), 2)
    assert held(r, "a") == {Medium.WEBCHAT: 3, Medium.EMAIL: 5}
    assert r.work("c3").status == "waiting" and r.work("e5").status == "waiting"  # type: ignore[union-attr]
    # finishing a chat frees exactly one chat slot: the oldest waiting chat is offered
    offer = only_offer(r.handle(WorkFinished("c0", 3)))
    assert offer.work_id == "c3"


def test_call_needs_an_empty_desk_and_blocks_everything_else() -> None:
    r = router()
    login(r, "a", 0, capacity=BLENDED)
    take(r, queue(r, "chat", 1, medium=Medium.WEBCHAT), 1)
    assert offers(queue(r, "call", 2, medium=Medium.VOICE)) == []  # a chat is open
    r.handle(WorkFinished("chat", 3))  # desk empty: the waiting call is offered
    assert r.work("call").agent_id == "a"  # type: ignore[union-attr]
    take(r, [], 3)
    offer_id = r.work("call").offer_id  # type: ignore[union-attr]
    r.handle(OfferAccepted(offer_id, 4))  # type: ignore[arg-type]
    assert offers(queue(r, "chat2", 5, medium=Medium.WEBCHAT)) == []  # call blocks chats


def test_non_exclusive_voice_can_mix_with_chat() -> None:
    r = router()
    cap = Capacity({Medium.VOICE: 1, Medium.WEBCHAT: 2}, exclusive=frozenset())
    login(r, "a", 0, capacity=cap)
    take(r, queue(r, "call", 1, medium=Medium.VOICE), 1)
    assert only_offer(queue(r, "chat", 2, medium=Medium.WEBCHAT)).agent_id == "a"


def test_cost_budget_is_never_exceeded() -> None:
    r = router()
    cap = Capacity({Medium.WEBCHAT: 3, Medium.EMAIL: 5}, exclusive=frozenset(), budget=5,
                   costs={Medium.WEBCHAT: 2, Medium.EMAIL: 1})
    login(r, "a", 0, capacity=cap)
    take(r, queue(r, "c1", 1, medium=Medium.WEBCHAT), 1)
    take(r, queue(r, "c2", 1, medium=Medium.WEBCHAT), 1)
    take(r, queue(r, "e1", 1, medium=Medium.EMAIL), 1)  # 2+2+1 = 5
    assert offers(queue(r, "e2", 2, medium=Medium.EMAIL)) == []
    assert held(r, "a") == {Medium.WEBCHAT: 2, Medium.EMAIL: 1}


def test_offer_in_flight_reserves_capacity() -> None:
    r = router()
    login(r, "a", 0, capacity=Capacity({Medium.WEBCHAT: 1}))
    login(r, "b", 0, capacity=Capacity({Medium.WEBCHAT: 1}))
    first = only_offer(queue(r, "c1", 1, medium=Medium.WEBCHAT))
    second = only_offer(queue(r, "c2", 1, medium=Medium.WEBCHAT))
    assert first.agent_id != second.agent_id


def test_medium_without_limit_is_never_offered() -> None:
    r = router()
    login(r, "a", 0, capacity=Capacity({Medium.EMAIL: 5}))
    assert offers(queue(r, "fax", 1, medium=Medium.FAX)) == []


def test_shrinking_capacity_revokes_an_offer_that_no_longer_fits() -> None:
    r = router(QueueConfig("q"))
    login(r, "a", 0, capacity=Capacity({Medium.WEBCHAT: 2}))
    login(r, "b", 0, capacity=Capacity({Medium.WEBCHAT: 2}))
    offer = only_offer(queue(r, "c1", 1, medium=Medium.WEBCHAT))
    cmds = r.handle(CapacityChanged(offer.agent_id, Capacity({Medium.EMAIL: 1}), 2))
    [revoke] = of_type(cmds, RevokeOffer)
    assert revoke.offer_id == offer.offer_id and revoke.reason.rule == "capacity"
    assert only_offer(cmds).agent_id != offer.agent_id


def test_growing_capacity_offers_waiting_work() -> None:
    r = router()
    login(r, "a", 0, capacity=Capacity({Medium.EMAIL: 1}))
    take(r, queue(r, "e1", 1, medium=Medium.EMAIL), 1)
    queue(r, "e2", 2, medium=Medium.EMAIL)
    cmds = r.handle(CapacityChanged("a", Capacity({Medium.EMAIL: 2}), 3))
    assert only_offer(cmds).work_id == "e2"


def test_negative_limits_are_rejected_with_field() -> None:
    with pytest.raises(ConfigError) as err:
        Capacity({Medium.EMAIL: -1})
    assert err.value.field == "capacity.limits.email"


def test_agent_over_a_shrunk_capacity_gets_nothing_until_it_drains() -> None:
    r = router()
    login(r, "a", 0, capacity=Capacity({Medium.VOICE: 1}))
    take(r, queue(r, "call", 1), 1)
    r.handle(CapacityChanged("a", Capacity({Medium.WEBCHAT: 3}, exclusive=frozenset()), 2))
    assert offers(queue(r, "chat", 3, medium=Medium.WEBCHAT)) == []  # still holds the call
    assert only_offer(r.handle(WorkFinished("call", 4))).work_id == "chat"
