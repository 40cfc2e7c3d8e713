"""Hypothesis properties over random event sequences, checked against a shadow of the world.

- capacity is never exceeded by an offer;
- no work is offered to two agents at once (and the router's live offers match the commands);
- quiescence: no waiting item is left while an eligible agent with room is ready (except for
  the agent's own re-offer delay), hence every queued item is eventually offered;
- FIFO within a priority, priority first;
- every offer ends exactly once, in accept, decline or expiry/revocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing import (
    AgentDisconnected,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentProfile,
    AgentReconnected,
    Assign,
    Capacity,
    CapacityChanged,
    Command,
    Medium,
    OfferAccepted,
    OfferDeclined,
    Presence,
    PresenceChanged,
    QueueConfig,
    Rejected,
    RevokeOffer,
    Router,
    SendOffer,
    SkillReq,
    SkillsChanged,
    Tick,
    Work,
    WorkFinished,
    WorkQueued,
    WorkWithdrawn,
)
from routing.policies import eligible, fits

CAPACITIES = [
    Capacity({Medium.VOICE: 1}),
    Capacity({Medium.WEBCHAT: 2}),
    Capacity({Medium.VOICE: 1, Medium.WEBCHAT: 2, Medium.EMAIL: 3}),
    Capacity({Medium.WEBCHAT: 3, Medium.EMAIL: 3}, exclusive=frozenset(), budget=4,
             costs={Medium.WEBCHAT: 2}),
]
MEDIA = [Medium.VOICE, Medium.WEBCHAT, Medium.EMAIL]
QUEUES = [
    QueueConfig("sales", (SkillReq("en", 2),), offer_ttl_s=20, reoffer_delay_s=10),
    QueueConfig("support", (SkillReq("en", 1), SkillReq("fr", 1)), offer_ttl_s=20,
                reoffer_delay_s=10, wrap_up_s=5, disconnect_grace_s=15),
    QueueConfig("any", (), offer_ttl_s=20, reoffer_delay_s=10, preferred_window_s=15),
]
REQS = {q.queue_id: q.skills for q in QUEUES}
DELAY = 10.0


@dataclass
class Shadow:
    """What the test knows from the commands it saw, independent of the router's internals."""

    router: Router
    now: float = 0.0
    skills: dict[str, dict[str, int]] = field(default_factory=dict)
    caps: dict[str, Capacity] = field(default_factory=dict)
    logged_in: dict[str, bool] = field(default_factory=dict)
    live: dict[str, SendOffer] = field(default_factory=dict)  # offer id → offer
    live_by_work: dict[str, str] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)  # offer id → times closed
    sent: list[SendOffer] = field(default_factory=list)
    excluded: dict[tuple[str, str], float] = field(default_factory=dict)
    work: dict[str, Work] = field(default_factory=dict)
    assigned: list[str] = field(default_factory=list)
    n: int = 0
    ticked: float = 0.0  # deadlines (e.g. the end of a re-offer delay) fire on Tick only

    def close(self, offer_id: str) -> SendOffer:
        offer = self.live.pop(offer_id)
        del self.live_by_work[offer.work_id]
        self.closed[offer_id] = self.closed.get(offer_id, 0) + 1
        return offer

    def apply(self, event: object) -> list[Command]:
        before = self.router.snapshot().now  # a deadline fires at max(its time, the clock)
        cmds = self.router.handle(event)  # type: ignore[arg-type]
        if isinstance(event, Tick):
            self.ticked = max(self.ticked, event.now)
        offered_to: set[str] = set()
        for c in cmds:
            if isinstance(c, SendOffer):
                assert c.work_id not in self.live_by_work, f"{c.work_id} offered twice"
                self.live[c.offer_id] = c
                self.live_by_work[c.work_id] = c.offer_id
                self.sent.append(c)
                offered_to.add(c.agent_id)
            elif isinstance(c, RevokeOffer):
                offer = self.close(c.offer_id)
                if c.reason.rule == "expired":
                    fired = max(before, offer.expires_at)
                    self.excluded[(offer.work_id, offer.agent_id)] = fired + DELAY
            elif isinstance(c, Assign):
                self.close(c.offer_id)
                self.assigned.append(c.work_id)
        assert set(self.router.offers()) == set(self.live)
        holders = [o.agent_id for o in self.live.values()]
        assert len(holders) == len(set(holders)), "an agent holds two live offers"
        for agent_id in offered_to:
            self.check_capacity(agent_id)
        self.check_quiescent()
        return cmds

    def check_capacity(self, agent_id: str) -> None:
        view = self.router.agent(agent_id)
        assert view is not None
        held = dict(view.held)
        cap = self.caps[agent_id]
        for m, n in held.items():
            assert n <= cap.limits.get(m, 0), (agent_id, held, cap)
        if any(held.get(m, 0) for m in cap.exclusive):
            assert sum(held.values()) == 1, (agent_id, held)
        if cap.budget is not None:
            assert sum(cap.cost(m) * n for m, n in held.items()) <= cap.budget

    def free_for(self, agent_id: str, medium: Medium) -> bool:
        view = self.router.agent(agent_id)
        assert view is not None
        if not (view.logged_in and view.connected and view.presence is Presence.READY):
            return False
        if view.offer_id is not None:
            return False
        held = dict(view.held)
        cap = self.caps[agent_id]
        exclusive = sum(n for m, n in held.items() if m in cap.exclusive)
        cost = sum(cap.cost(m) * n for m, n in held.items())
        overfull = (any(n > cap.limits.get(m, 0) for m, n in held.items())
                    or (exclusive and sum(held.values()) > 1)
                    or (cap.budget is not None and cost > cap.budget))
        if overfull:  # holds more than a shrunk capacity allows: nothing new until it drains
            return False
        return fits(cap, held, sum(held.values()), exclusive, cost, medium)

    def check_quiescent(self) -> None:
        for work_id, work in self.work.items():
            view = self.router.work(work_id)
            if view is None or view.status != "waiting":
                continue
            for agent_id, skills in self.skills.items():
                if self.excluded.get((work_id, agent_id), -1.0) > self.ticked:
                    continue  # still skipped: its re-offer delay has not been ticked away
                if eligible(skills, REQS[view.queue_id]) and self.free_for(agent_id,
                                                                           work.medium):
                    raise AssertionError(f"{work_id} waits while {agent_id} is free for it")


op = st.tuples(st.integers(0, 12), st.integers(0, 10_000), st.integers(0, 10_000))
agent_spec = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 3))


def run_ops(shadow: Shadow, ops: list[tuple[int, int, int]]) -> None:
    agents = list(shadow.skills)
    for kind, a, b in ops:
        shadow.now += 1
        now = shadow.now
        agent_id = agents[a % len(agents)]
        live = sorted(shadow.live)
        if kind <= 2:  # queue work (most common)
            shadow.n += 1
            qid = QUEUES[a % len(QUEUES)].queue_id
            pref = agents[b % len(agents)] if b % 5 == 0 else None
            work = Work(f"w{shadow.n}", qid, MEDIA[b % 3], now, priority=(a // 3) % 3,
                        preferred_agent=pref)
            shadow.work[work.work_id] = work
            shadow.apply(WorkQueued(work, now))
        elif kind == 3 and live:
            shadow.apply(OfferAccepted(live[a % len(live)], now))
        elif kind == 4 and live:
            offer_id = live[a % len(live)]
            offer = shadow.close(offer_id)
            shadow.excluded[(offer.work_id, offer.agent_id)] = now + DELAY
            cmds = shadow.apply(OfferDeclined(offer_id, now))
            assert not any(isinstance(c, Rejected) for c in cmds)
        elif kind == 5 and shadow.assigned:
            work_id = shadow.assigned.pop(a % len(shadow.assigned))
            if shadow.router.work(work_id) is not None:
                shadow.apply(WorkFinished(work_id, now))
        elif kind == 6 and shadow.work:
            work_id = sorted(shadow.work)[a % len(shadow.work)]
            if shadow.router.work(work_id) is not None:
                pending = shadow.live_by_work.get(work_id)
                cmds = shadow.apply(WorkWithdrawn(work_id, now))
                assert pending is None or any(
                    isinstance(c, RevokeOffer) and c.offer_id == pending for c in cmds)
        elif kind == 7:
            presence = (Presence.READY, Presence.NOT_READY, Presence.READY)[b % 3]
            if shadow.logged_in[agent_id]:
                shadow.apply(PresenceChanged(agent_id, presence, now))
        elif kind == 8:
            event = AgentDisconnected if b % 2 else AgentReconnected
            shadow.apply(event(agent_id, now))
        elif kind == 9:
            shadow.now += a % 40
            shadow.apply(Tick(shadow.now))
        elif kind == 10:
            shadow.caps[agent_id] = CAPACITIES[b % len(CAPACITIES)]
            shadow.apply(CapacityChanged(agent_id, shadow.caps[agent_id], now))
        elif kind == 11:
            shadow.skills[agent_id] = skillset(b % 6, (b // 6) % 6)
            shadow.apply(SkillsChanged(agent_id, shadow.skills[agent_id], now))
        elif kind == 12:
            if shadow.logged_in[agent_id]:
                shadow.apply(AgentLoggedOut(agent_id, now))
            else:
                login(shadow, agent_id, now)
            shadow.logged_in[agent_id] = not shadow.logged_in[agent_id]


def skillset(en: int, fr: int) -> dict[str, int]:
    """Level 0 means "does not have the skill"."""
    return {k: v for k, v in (("en", en), ("fr", fr)) if v}


def login(shadow: Shadow, agent_id: str, now: float) -> None:
    profile = AgentProfile(agent_id, shadow.skills[agent_id], shadow.caps[agent_id])
    shadow.apply(AgentLoggedIn(profile, now, Presence.READY))


def build(specs: list[tuple[int, int, int]]) -> Shadow:
    shadow = Shadow(Router(QUEUES))
    for i, (en, fr, cap) in enumerate(specs):
        agent_id = f"a{i}"
        shadow.skills[agent_id] = skillset(en, fr)
        shadow.caps[agent_id] = CAPACITIES[cap]
        shadow.logged_in[agent_id] = True
        login(shadow, agent_id, 0)
    return shadow


@settings(max_examples=1000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(agent_spec, min_size=1, max_size=5), st.lists(op, max_size=100))
def test_random_sequences_keep_every_invariant(specs: list[tuple[int, int, int]],
                                               ops: list[tuple[int, int, int]]) -> None:
    shadow = build(specs)
    run_ops(shadow, ops)
    # eventually: everyone back, ready and connected; time runs until nothing is pending
    for agent_id in shadow.skills:
        if not shadow.logged_in[agent_id]:
            login(shadow, agent_id, shadow.now)
            shadow.logged_in[agent_id] = True
        shadow.apply(AgentReconnected(agent_id, shadow.now))
        shadow.apply(PresenceChanged(agent_id, Presence.READY, shadow.now))
    for _ in range(300):
        deadline = shadow.router.next_deadline()
        if deadline is None:
            break
        shadow.now = max(shadow.now, deadline)
        shadow.apply(Tick(shadow.now))
    assert shadow.router.next_deadline() is None
    # every offer ended exactly once (accepted, declined, or expired/revoked)
    assert not shadow.live
    assert all(shadow.closed.get(o.offer_id) == 1 for o in shadow.sent)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=40),
       st.integers(1, 3))
def test_fifo_within_priority(items: list[tuple[int, int]], agents: int) -> None:
    """One queue, identical agents, no declines: items are offered in (priority, arrival)
    order, and no waiting item is ever better than one just offered."""
    r = Router([QueueConfig("q")])
    waiting: dict[str, tuple[int, float]] = {}
    offered: list[str] = []
    now = 0.0
    busy: list[str] = []

    def run(event: object) -> None:
        for c in r.handle(event):  # type: ignore[arg-type]
            if isinstance(c, SendOffer):
                key = waiting.pop(c.work_id)
                assert all(key <= other for other in waiting.values()), (c.work_id, waiting)
                offered.append(c.work_id)
                for a in r.handle(OfferAccepted(c.offer_id, now)):
                    assert isinstance(a, Assign)
                busy.append(c.work_id)

    for i, (gap, priority) in enumerate(items):
        now += gap
        waiting[f"w{i}"] = (-priority, now)
        run(WorkQueued(Work(f"w{i}", "q", Medium.VOICE, now, priority), now))
        if i == len(items) // 2:  # agents arrive mid-way, when a backlog exists
            for k in range(agents):
                run(AgentLoggedIn(AgentProfile(f"a{k}", {}, CAPACITIES[0]), now,
                                  Presence.READY))
    while busy:
        now += 1
        run(WorkFinished(busy.pop(0), now))
    assert not waiting and len(offered) == len(items)
