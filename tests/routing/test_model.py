"""Value validation and Erlang formulas."""

from __future__ import annotations

import math

import pytest

from routing import (
    AgentProfile,
    Capacity,
    ConfigError,
    Medium,
    OverflowAction,
    OverflowStep,
    QueueConfig,
    SkillReq,
    Tick,
    Work,
    erlang_b,
    erlang_c,
    service_level,
)
from routing.policies import eligible, relax

from .helpers import router


@pytest.mark.parametrize(("build", "field"), [
    (lambda: SkillReq("x", 6), "skills.x"),
    (lambda: SkillReq("", 1), "skill"),
    (lambda: QueueConfig("q", offer_ttl_s=0), "offer_ttl_s"),
    (lambda: QueueConfig("q", sl_target_pct=1.5), "sl_target_pct"),
    (lambda: QueueConfig(""), "queue_id"),
    (lambda: OverflowStep(10, OverflowAction.ESCALATE), "overflow.queue_id"),
    (lambda: OverflowStep(-1, OverflowAction.RELAX), "overflow.after_s"),
    (lambda: AgentProfile("a", {"x": 0}), "skills.x"),
    (lambda: Work("w", "q", Medium.VOICE, math.nan), "arrival"),
    (lambda: Work("w", "q", "pigeon", 0), "medium"),  # type: ignore[arg-type]
    (lambda: Capacity({"pigeon": 1}), "capacity.limits.pigeon"),  # type: ignore[dict-item]
    (lambda: QueueConfig("q", mode="random"), "mode"),  # type: ignore[arg-type]
])
def test_invalid_values_name_their_field(build, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        build()
    assert err.value.field == field


def test_requirements_are_canonical() -> None:
    a = QueueConfig("a", (SkillReq("y", 2), SkillReq("x", 1), SkillReq("y", 3)))
    b = QueueConfig("b", (SkillReq("x", 1), SkillReq("y", 3)))
    assert a.skills == b.skills == (SkillReq("x", 1), SkillReq("y", 3))


def test_eligibility_and_relaxation() -> None:
    reqs = (SkillReq("x", 3), SkillReq("y", 1))
    assert eligible({"x": 3, "y": 1}, reqs)
    assert not eligible({"x": 2, "y": 5}, reqs)
    assert relax(reqs, 2) == (SkillReq("x", 2), SkillReq("y", 1))


def test_unknown_event_type_is_rejected() -> None:
    with pytest.raises(ConfigError):
        router().handle("tick")  # type: ignore[arg-type]


def test_time_never_runs_backwards() -> None:
    r = router()
    r.handle(Tick(100))
    r.handle(Tick(50))
    assert r.snapshot().now == 100


def test_erlang_b_and_c_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(3, 3.0) == 1.0  # unstable


def test_erlang_stable_for_large_centers() -> None:
    c = erlang_c(2000, 1950.0)
    assert 0.0 < c < 1.0 and math.isfinite(c)
    assert erlang_b(5000, 4000.0) < 1e-6


def test_service_level_formula() -> None:
    # classic: 2 agents, 1 erlang, AHT 60 s, target 20 s: 1 - (1/3) e^{-1/3}
    assert service_level(1 / 60, 60, 2, 20) == pytest.approx(1 - math.exp(-1 / 3) / 3)
    assert service_level(1.0, 10, 5, 20) == 0.0
