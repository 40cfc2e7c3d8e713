"""The routing rules as small pure functions: eligibility, relaxation, capacity fit, sort keys.

Kept apart from the indexes so each rule reads in one place and is tested on its own; the
indexes call these when an agent or item changes, never in a loop over all agents.
"""

from __future__ import annotations

from collections.abc import Mapping

from routing.model import Capacity, Medium, Mode, Requirements, SkillReq


def eligible(skills: Mapping[str, int], reqs: Requirements) -> bool:
    """An agent may take work needing ``reqs`` if every skill is held at least at its minimum."""
    return all(skills.get(r.skill, 0) >= r.min_level for r in reqs)


def relax(reqs: Requirements, min_level: int) -> Requirements:
    """The overflow "relax" step: every minimum is lowered to ``min_level`` (never raised)."""
    return tuple(SkillReq(r.skill, min(r.min_level, min_level)) for r in reqs)


def skill_score(skills: Mapping[str, int], reqs: Requirements) -> int:
    """Summed level on the required skills: the "skill level first" mode's ranking."""
    return sum(skills.get(r.skill, 0) for r in reqs)


def fits(cap: Capacity, used: Mapping[Medium, int], total: int, exclusive_used: int,
         cost_used: int, medium: Medium) -> bool:
    """Whether one more item of ``medium`` fits: per-medium limit, exclusivity (a call blocks
    everything else and needs an empty desk), and the optional shared cost budget."""
    if used.get(medium, 0) >= cap.limits.get(medium, 0):
        return False
    if exclusive_used:
        return False
    if total and medium in cap.exclusive:
        return False
    return cap.budget is None or cost_used + cap.cost(medium) <= cap.budget


def agent_key(mode: Mode, idle_since: float, last_offer: int, load: int,
              score: int) -> tuple[float, float]:
    """The agent's sort key under ``mode``; the smallest key wins the offer."""
    if mode is Mode.LONGEST_IDLE:
        return (idle_since, 0.0)
    if mode is Mode.ROUND_ROBIN:
        return (float(last_offer), idle_since)
    if mode is Mode.LEAST_BUSY:
        return (float(load), idle_since)
    return (float(-score), idle_since)
