"""Offers: TTL, accept, decline, expiry, re-offer delay, missed offers, stale answers."""

from __future__ import annotations

from routing import (
    Assign,
    Capacity,
    Medium,
    OfferAccepted,
    OfferDeclined,
    Presence,
    QueueConfig,
    Rejected,
    RevokeOffer,
    SetPresence,
    Tick,
)

from .helpers import login, of_type, offers, only_offer, queue, router


def test_ready_agent_gets_offer_with_ttl_and_accept_assigns() -> None:
    r = router(QueueConfig("q", offer_ttl_s=15))
    login(r, "a", 0)
    offer = only_offer(queue(r, "w", 10))
    assert (offer.work_id, offer.agent_id, offer.expires_at) == ("w", "a", 25)
    assert r.next_deadline() == 25
    cmds = r.handle(OfferAccepted(offer.offer_id, 12))
    [assign] = of_type(cmds, Assign)
    assert (assign.work_id, assign.agent_id, assign.wait_s) == ("w", "a", 2)
    view = r.work("w")
    assert view is not None and view.status == "assigned" and view.agent_id == "a"
    assert r.next_deadline() is None  # the expiry of an accepted offer is gone


def test_declined_offer_goes_to_next_agent_and_not_back_to_decliner() -> None:
    r = router(QueueConfig("q", reoffer_delay_s=30))
    login(r, "a", 0)
    login(r, "b", 1)
    first = only_offer(queue(r, "w", 2))
    assert first.agent_id == "a"  # longest idle
    second = only_offer(r.handle(OfferDeclined(first.offer_id, 3)))
    assert second.agent_id == "b"
    # b declines too: a is still inside the re-offer delay, so nobody gets it now
    assert r.handle(OfferDeclined(second.offer_id, 4)) == []
    assert r.work("w") is not None and r.work("w").status == "waiting"  # type: ignore[union-attr]
    # when a's delay ends (t=33) the item is offered to a again
    assert r.next_deadline() == 33
    again = only_offer(r.handle(Tick(33)))
    assert again.agent_id == "a"


def test_decliner_still_gets_other_work_meanwhile() -> None:
    r = router()
    login(r, "a", 0)
    first = only_offer(queue(r, "w1", 1))
    queue(r, "w2", 2)  # waits: a holds an offer
    nxt = only_offer(r.handle(OfferDeclined(first.offer_id, 3)))
    assert (nxt.agent_id, nxt.work_id) == ("a", "w2")


def test_expired_offer_is_revoked_and_requeued_to_next_agent() -> None:
    r = router(QueueConfig("q", offer_ttl_s=10))
    login(r, "a", 0)
    login(r, "b", 1)
    first = only_offer(queue(r, "w", 2))
    assert r.handle(Tick(11.9)) == []
    cmds = r.handle(Tick(12))
    [revoke] = of_type(cmds, RevokeOffer)
    assert (revoke.offer_id, revoke.reason.rule) == (first.offer_id, "expired")
    nxt = only_offer(cmds)
    assert nxt.agent_id == "b" and nxt.expires_at == 22
    # a late accept of the expired offer is rejected and changes nothing
    late = r.handle(OfferAccepted(first.offer_id, 13))
    assert [type(c) for c in late] == [Rejected]
    assert r.agent("a").offer_id is None  # type: ignore[union-attr]


def test_repeatedly_missed_offers_set_agent_not_ready_missed() -> None:
    r = router(QueueConfig("q", offer_ttl_s=5, reoffer_delay_s=0), max_missed=2)
    login(r, "a", 0)
    only_offer(queue(r, "w", 0))
    cmds = r.handle(Tick(5))  # first miss: re-offered to a (no delay configured)
    assert only_offer(cmds).agent_id == "a"
    assert not of_type(cmds, SetPresence)
    cmds = r.handle(Tick(10))  # second consecutive miss
    [presence] = of_type(cmds, SetPresence)
    assert (presence.agent_id, presence.presence, presence.presence_reason) == (
        "a", Presence.NOT_READY, "missed")
    assert of_type(cmds, RevokeOffer) and not offers(cmds)
    assert offers(queue(r, "x", 11)) == []  # a not-ready agent gets nothing
    assert r.agent("a").presence is Presence.NOT_READY  # type: ignore[union-attr]


def test_accept_resets_missed_counter() -> None:
    r = router(QueueConfig("q", offer_ttl_s=5, reoffer_delay_s=0), max_missed=2)
    login(r, "a", 0, capacity=Capacity({Medium.WEBCHAT: 3}))
    first = only_offer(queue(r, "w1", 0, medium=Medium.WEBCHAT))
    again = only_offer(r.handle(Tick(5)))  # one miss
    r.handle(OfferAccepted(again.offer_id, 6))
    assert r.agent("a").missed == 0  # type: ignore[union-attr]
    assert first.offer_id != again.offer_id


def test_decline_of_unknown_offer_is_rejected() -> None:
    r = router()
    cmds = r.handle(OfferDeclined("nope", 1))
    assert [type(c) for c in cmds] == [Rejected]
