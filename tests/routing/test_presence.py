"""Presence: only ready agents get offers; wrap-up per queue; not-ready revokes; log out."""

from __future__ import annotations

import pytest

from routing import (
    AgentLoggedOut,
    Capacity,
    Medium,
    Presence,
    PresenceChanged,
    QueueConfig,
    Requeue,
    RevokeOffer,
    SetPresence,
    Tick,
    UnknownAgent,
    WorkFinished,
)

from .helpers import login, of_type, offers, only_offer, queue, router, take


def test_not_ready_agent_gets_nothing_until_ready() -> None:
    r = router()
    login(r, "a", 0, presence=Presence.NOT_READY)
    assert offers(queue(r, "w", 1)) == []
    cmds = r.handle(PresenceChanged("a", Presence.READY, 2))
    assert only_offer(cmds).work_id == "w"


def test_wrap_up_after_finish_then_ready_again() -> None:
    r = router(QueueConfig("q", wrap_up_s=30))
    login(r, "a", 0)
    take(r, queue(r, "w1", 1), 1)
    queue(r, "w2", 2)
    cmds = r.handle(WorkFinished("w1", 10))
    [wrap] = of_type(cmds, SetPresence)
    assert (wrap.presence, wrap.presence_reason) == (Presence.WRAP_UP, "wrap_up")
    assert offers(cmds) == []
    assert r.next_deadline() == 40
    assert r.handle(Tick(39)) == []
    cmds = r.handle(Tick(40))
    [ready] = of_type(cmds, SetPresence)
    assert ready.presence is Presence.READY
    assert only_offer(cmds).work_id == "w2"


def test_agent_can_end_wrap_up_early() -> None:
    r = router(QueueConfig("q", wrap_up_s=30))
    login(r, "a", 0)
    take(r, queue(r, "w1", 1), 1)
    r.handle(WorkFinished("w1", 10))
    queue(r, "w2", 11)
    cmds = r.handle(PresenceChanged("a", Presence.READY, 12))
    assert only_offer(cmds).work_id == "w2"
    take(r, cmds, 13)
    assert r.handle(Tick(40)) == []  # the old wrap-up timer no longer fires
    assert r.agent("a").presence is Presence.READY  # type: ignore[union-attr]


def test_going_not_ready_revokes_live_offer_and_requeues() -> None:
    r = router()
    login(r, "a", 0)
    login(r, "b", 1)
    offer = only_offer(queue(r, "w", 2))
    cmds = r.handle(PresenceChanged(offer.agent_id, Presence.NOT_READY, 3, "break"))
    [revoke] = of_type(cmds, RevokeOffer)
    assert revoke.offer_id == offer.offer_id
    assert only_offer(cmds).agent_id == "b"
    assert r.agent("a").presence_reason == "break"  # type: ignore[union-attr]


def test_log_out_requeues_digital_work_but_keeps_calls() -> None:
    r = router()
    blended = Capacity({Medium.WEBCHAT: 2, Medium.EMAIL: 2}, exclusive=frozenset())
    login(r, "a", 0, capacity=blended)
    take(r, queue(r, "chat", 1, medium=Medium.WEBCHAT), 1)
    take(r, queue(r, "mail", 1, medium=Medium.EMAIL), 1)
    login(r, "b", 2, capacity=blended)
    cmds = r.handle(AgentLoggedOut("a", 3))
    assert sorted(c.work_id for c in of_type(cmds, Requeue)) == ["chat", "mail"]
    assert {o.agent_id for o in offers(cmds)} == {"b"}


def test_log_out_keeps_voice_work_until_it_finishes() -> None:
    r = router()
    login(r, "a", 0)
    take(r, queue(r, "call", 1), 1)
    assert of_type(r.handle(PresenceChanged("a", Presence.OFFLINE, 2)), Requeue) == []
    assert r.work("call").agent_id == "a"  # type: ignore[union-attr]
    r.handle(WorkFinished("call", 3))
    assert r.work("call") is None


def test_unknown_agent_is_an_error_and_changes_nothing() -> None:
    r = router()
    with pytest.raises(UnknownAgent):
        r.handle(PresenceChanged("ghost", Presence.READY, 1))
