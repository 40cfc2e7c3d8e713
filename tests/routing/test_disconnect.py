"""Agent disconnects: offers revoked at once, digital work requeued after the grace period."""

from __future__ import annotations

from routing import (
    AgentDisconnected,
    AgentReconnected,
    Capacity,
    Medium,
    QueueConfig,
    Requeue,
    RevokeOffer,
    Tick,
)

from .helpers import login, of_type, offers, only_offer, queue, router, take

CHAT = Capacity({Medium.WEBCHAT: 3, Medium.VOICE: 1}, exclusive=frozenset())


def test_disconnect_revokes_offer_at_once() -> None:
    r = router()
    login(r, "a", 0, capacity=CHAT)
    login(r, "b", 1, capacity=CHAT)
    offer = only_offer(queue(r, "c", 2, medium=Medium.WEBCHAT))
    cmds = r.handle(AgentDisconnected(offer.agent_id, 3))
    [revoke] = of_type(cmds, RevokeOffer)
    assert revoke.reason.rule == "disconnected"
    assert only_offer(cmds).agent_id == "b"


def test_digital_work_requeued_after_grace_voice_kept() -> None:
    r = router(QueueConfig("q", disconnect_grace_s=60))
    login(r, "a", 0, capacity=CHAT)
    take(r, queue(r, "chat", 1, medium=Medium.WEBCHAT), 1)
    take(r, queue(r, "call", 1, medium=Medium.VOICE), 1)
    assert r.handle(AgentDisconnected("a", 10)) == []
    assert r.handle(Tick(69)) == []
    login(r, "b", 69, capacity=CHAT)
    cmds = r.handle(Tick(70))
    [requeue] = of_type(cmds, Requeue)
    assert (requeue.work_id, requeue.agent_id) == ("chat", "a")
    assert only_offer(cmds).agent_id == "b"
    assert r.work("call").agent_id == "a"  # type: ignore[union-attr]


def test_reconnect_within_grace_keeps_work() -> None:
    r = router(QueueConfig("q", disconnect_grace_s=60))
    login(r, "a", 0, capacity=CHAT)
    take(r, queue(r, "chat", 1, medium=Medium.WEBCHAT), 1)
    r.handle(AgentDisconnected("a", 10))
    r.handle(AgentReconnected("a", 20))
    assert r.handle(Tick(100)) == []
    assert r.work("chat").agent_id == "a"  # type: ignore[union-attr]


def test_queue_may_keep_work_with_disconnected_agent() -> None:
    r = router(QueueConfig("q", keep_on_disconnect=True, disconnect_grace_s=5))
    login(r, "a", 0, capacity=CHAT)
    take(r, queue(r, "chat", 1, medium=Medium.WEBCHAT), 1)
    r.handle(AgentDisconnected("a", 2))
    assert r.next_deadline() is None
    assert r.handle(Tick(100)) == []


def test_disconnected_agent_gets_no_offers() -> None:
    r = router()
    login(r, "a", 0, capacity=CHAT)
    r.handle(AgentDisconnected("a", 1))
    assert offers(queue(r, "c", 2, medium=Medium.WEBCHAT)) == []
    assert only_offer(r.handle(AgentReconnected("a", 3))).work_id == "c"
