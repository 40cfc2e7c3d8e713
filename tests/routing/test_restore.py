"""Restart: rebuild from the database without re-sending offers or losing work."""

from __future__ import annotations

import pytest

from routing import (
    AssignmentRestored,
    Capacity,
    ConfigError,
    DuplicateWork,
    Medium,
    OfferAccepted,
    OfferRestored,
    OverflowAction,
    OverflowStep,
    Presence,
    QueueConfig,
    RevokeOffer,
    Router,
    SendOffer,
    Tick,
    UnknownAgent,
    UnknownQueue,
    Voicemail,
    Work,
    WorkFinished,
    WorkQueued,
)

from .helpers import login, of_type, offers, only_offer, queue, router


def test_restored_offer_is_not_resent_and_expires_on_time() -> None:
    r = router(QueueConfig("q"))
    login(r, "a", 100)
    login(r, "b", 100)
    work = Work("w", "q", Medium.VOICE, arrival=50)
    assert r.handle(OfferRestored("offer-from-db", work, "a", expires_at=110, now=100)) == []
    assert r.next_deadline() == 110
    assert r.work("w").offer_id == "offer-from-db"  # type: ignore[union-attr]
    cmds = r.handle(Tick(110))
    assert of_type(cmds, RevokeOffer)[0].offer_id == "offer-from-db"
    assert only_offer(cmds).agent_id == "b"


def test_restored_offer_can_be_accepted() -> None:
    r = router(QueueConfig("q", sl_target_s=60))
    login(r, "a", 100)
    r.handle(OfferRestored("o1", Work("w", "q", Medium.VOICE, 50), "a", 110, 100))
    cmds = r.handle(OfferAccepted("o1", 101))
    assert [type(c).__name__ for c in cmds] == ["Assign"]
    assert r.snapshot().queues[0].answered_in_target == 1


def test_restored_assignment_holds_capacity() -> None:
    r = router()
    login(r, "a", 0, capacity=Capacity({Medium.WEBCHAT: 1}))
    r.handle(AssignmentRestored(Work("old", "q", Medium.WEBCHAT, 0), "a", 1))
    assert offers(queue(r, "new", 2, medium=Medium.WEBCHAT)) == []
    assert only_offer(r.handle(WorkFinished("old", 3))).work_id == "new"


def test_queued_work_keeps_its_place_and_overflow_progress() -> None:
    steps = (OverflowStep(10, OverflowAction.RELAX, min_level=1),
             OverflowStep(100, OverflowAction.VOICEMAIL))
    r = router(QueueConfig("q", overflow=steps))
    queue(r, "later", 100)
    r.handle(WorkQueued(Work("restored", "q", Medium.VOICE, arrival=5, overflow_done=1), 100))
    cmds = r.handle(Tick(105))  # only the voicemail step is still due for "restored"
    assert [type(c) for c in cmds] == [Voicemail]
    login(r, "a", 106)
    assert r.work("later").agent_id == "a"  # type: ignore[union-attr]


def test_full_rebuild_matches_original_state() -> None:
    def build() -> tuple[Router, list[SendOffer]]:
        r = router(QueueConfig("q", offer_ttl_s=30))
        login(r, "a", 0)
        login(r, "b", 0)
        o1 = only_offer(queue(r, "w1", 1))
        r.handle(OfferAccepted(o1.offer_id, 2))
        o2 = only_offer(queue(r, "w2", 3))
        queue(r, "w3", 4)
        return r, [o1, o2]

    original, (o1, o2) = build()
    rebuilt = router(QueueConfig("q", offer_ttl_s=30))
    login(rebuilt, "a", 10, presence=Presence.NOT_READY)
    login(rebuilt, "b", 10, presence=Presence.NOT_READY)
    rebuilt.handle(AssignmentRestored(Work("w1", "q", Medium.VOICE, 1), o1.agent_id, 10))
    rebuilt.handle(OfferRestored(o2.offer_id, Work("w2", "q", Medium.VOICE, 3), o2.agent_id,
                                 o2.expires_at, 10))
    assert rebuilt.handle(WorkQueued(Work("w3", "q", Medium.VOICE, 4), 10)) == []
    for wid in ("w1", "w2", "w3"):
        assert rebuilt.work(wid) == original.work(wid)
    assert rebuilt.next_deadline() == original.next_deadline()


def test_restore_errors_are_precise() -> None:
    r = router()
    with pytest.raises(UnknownAgent):
        r.handle(AssignmentRestored(Work("w", "q", Medium.VOICE, 0), "ghost", 1))
    login(r, "a", 0)
    with pytest.raises(UnknownQueue):
        r.handle(AssignmentRestored(Work("w", "nope", Medium.VOICE, 0), "a", 1))
    r.handle(OfferRestored("o", Work("w", "q", Medium.VOICE, 0), "a", 50, 1))
    with pytest.raises(ConfigError) as err:
        r.handle(OfferRestored("o2", Work("w2", "q", Medium.VOICE, 0), "a", 50, 1))
    assert err.value.field == "agent_id"
    with pytest.raises(DuplicateWork):
        queue(r, "w", 2)
    assert r.work("w").offer_id == "o"  # type: ignore[union-attr]


def test_offer_expired_while_down_is_revoked_and_rerouted_without_penalty() -> None:
    r = router(QueueConfig("q", reoffer_delay_s=30))
    login(r, "a", 100)
    cmds = r.handle(OfferRestored("old", Work("w", "q", Medium.VOICE, 50), "a", 90, 100))
    [revoke] = of_type(cmds, RevokeOffer)
    assert (revoke.offer_id, revoke.reason.rule) == ("old", "expired_while_down")
    offer = only_offer(cmds)  # the same agent may get it again at once: not their miss
    assert offer.agent_id == "a" and offer.offer_id != "old"
    assert r.agent("a").missed == 0  # type: ignore[union-attr]
