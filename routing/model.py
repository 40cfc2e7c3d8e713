"""Values the router is configured with and reasons about: enums, queue/agent/work values, errors.

Everything here is a frozen value so it can be logged, compared in tests and handed across the
dispatcher boundary without copies. Validation happens in ``__post_init__`` so a bad value fails
where it is built, with the offending field named (``ConfigError.field``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

MIN_LEVEL = 1
MAX_LEVEL = 5


class Medium(StrEnum):
    """The channel kind of a work item. Same string values as ``channels.base.ChannelKind``;
    redefined here because the router imports nothing outside the standard library."""

    VOICE = "voice"
    EMAIL = "email"
    FAX = "fax"
    SMS = "sms"
    WEBCHAT = "webchat"


class Presence(StrEnum):
    """An agent's presence: only READY agents (connected, with free capacity) get offers."""

    READY = "ready"
    NOT_READY = "not_ready"
    WRAP_UP = "wrap_up"
    OFFLINE = "offline"


class Mode(StrEnum):
    """How a queue picks among the eligible ready agents."""

    LONGEST_IDLE = "longest_idle"  # earliest idle_since wins (the default)
    ROUND_ROBIN = "round_robin"  # the agent offered work least recently wins
    LEAST_BUSY = "least_busy"  # fewest open items, then longest idle
    SKILL_LEVEL = "skill_level"  # highest summed level on the required skills, then longest idle


class OverflowAction(StrEnum):
    """What an overflow step does once an item has waited ``after_s`` seconds."""

    RELAX = "relax_min_level"  # lower every required minimum level to ``min_level``
    ADD_QUEUE = "add_queue"  # also offer to the agents of ``queue_id`` (item stays here too)
    ESCALATE = "escalate"  # move the item to ``queue_id`` (a tier 2/3 queue)
    VOICEMAIL = "voicemail"  # voice only: leave routing, the shell sends the call to voicemail
    CALLBACK = "callback"  # voice only: leave routing, the shell offers a callback


class RoutingError(Exception):
    """Base of the router's errors; ``code`` is stable and machine-readable."""

    code = "routing_error"


class ConfigError(RoutingError):
    """A configuration or event value is invalid; ``field`` names the culprit."""

    code = "invalid_value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownAgent(RoutingError):
    code = "unknown_agent"


class UnknownQueue(RoutingError):
    code = "unknown_queue"


class UnknownWork(RoutingError):
    code = "unknown_work"


class DuplicateWork(RoutingError):
    code = "duplicate_work"


def _check_level(name: str, level: int) -> None:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ConfigError(name, f"level {level} outside {MIN_LEVEL}..{MAX_LEVEL}")


def _check_time(name: str, value: float, *, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(name, f"{value!r} is not a {'positive' if positive else 'non-negative'}"
                          " finite number of seconds")


@dataclass(frozen=True, slots=True, order=True)
class SkillReq:
    """A required skill and the minimum level (1-5) an agent needs in it."""

    skill: str
    min_level: int = MIN_LEVEL

    def __post_init__(self) -> None:
        if not self.skill:
            raise ConfigError("skill", "empty skill name")
        _check_level(f"skills.{self.skill}", self.min_level)


Requirements = tuple[SkillReq, ...]


def requirements(reqs: tuple[SkillReq, ...] | list[SkillReq]) -> Requirements:
    """Canonical form (sorted, one entry per skill keeping the highest minimum) so equal
    requirement sets share one agent pool."""
    best: dict[str, int] = {}
    for r in reqs:
        best[r.skill] = max(best.get(r.skill, 0), r.min_level)
    return tuple(SkillReq(s, lvl) for s, lvl in sorted(best.items()))


E = TypeVar("E", bound=StrEnum)


def _enum(kind: type[E], name: str, value: object) -> E:
    try:
        return kind(str(value))
    except ValueError:
        raise ConfigError(name, f"{value!r} is not one of {[str(m) for m in kind]}") from None


def _frozen_map(name: str, value: Mapping[Medium, int]) -> Mapping[Medium, int]:
    return MappingProxyType({_enum(Medium, f"{name}.{k}", k): int(v) for k, v in value.items()})


@dataclass(frozen=True, slots=True)
class Capacity:
    """How much work an agent may hold at once, per medium.

    ``limits`` caps open items per medium (a missing medium means "never"). A medium in
    ``exclusive`` (voice by default) is only offered to an agent holding nothing else, and while
    it is held nothing else is offered. ``budget``/``costs`` add an optional shared budget: the
    summed cost of open items never exceeds it (e.g. budget 6, chat costs 2, email 1).
    Offers in flight count as held, so capacity is never exceeded even if every offer is accepted.
    """

    limits: Mapping[Medium, int] = field(
        default_factory=lambda: {Medium.VOICE: 1, Medium.WEBCHAT: 3, Medium.EMAIL: 5,
                                 Medium.SMS: 3, Medium.FAX: 5})
    exclusive: frozenset[Medium] = frozenset({Medium.VOICE})
    budget: int | None = None
    costs: Mapping[Medium, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limits", _frozen_map("capacity.limits", self.limits))
        object.__setattr__(self, "costs", _frozen_map("capacity.costs", self.costs))
        object.__setattr__(self, "exclusive", frozenset(
            _enum(Medium, "capacity.exclusive", m) for m in self.exclusive))
        for m, n in self.limits.items():
            if n < 0:
                raise ConfigError(f"capacity.limits.{m}", "negative limit")
        for m, n in self.costs.items():
            if n < 0:
                raise ConfigError(f"capacity.costs.{m}", "negative cost")
        if self.budget is not None and self.budget < 0:
            raise ConfigError("capacity.budget", "negative budget")

    def cost(self, medium: Medium) -> int:
        return self.costs.get(medium, 1)

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.limits.items())), self.exclusive, self.budget,
                     tuple(sorted(self.costs.items()))))


@dataclass(frozen=True, slots=True)
class OverflowStep:
    """One step of a queue's overflow ladder, applied when an item has waited ``after_s``."""

    after_s: float
    action: OverflowAction
    min_level: int = MIN_LEVEL  # RELAX: the new minimum for every required skill
    queue_id: str | None = None  # ADD_QUEUE / ESCALATE: the other queue
    tier: int | None = None  # ESCALATE: a label for the audit trail and the shell (2, 3, ...)

    def __post_init__(self) -> None:
        _check_time("overflow.after_s", self.after_s)
        _check_level("overflow.min_level", self.min_level)
        needs_queue = self.action in (OverflowAction.ADD_QUEUE, OverflowAction.ESCALATE)
        if needs_queue and not self.queue_id:
            raise ConfigError("overflow.queue_id", f"{self.action} needs a target queue")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue: who may take its work, how they are picked, its promises and overflow ladder."""

    queue_id: str
    skills: Requirements = ()
    mode: Mode = Mode.LONGEST_IDLE
    offer_ttl_s: float = 20.0
    sl_target_s: float = 20.0  # service level: answered within this many seconds ...
    sl_target_pct: float = 0.8  # ... for this share of contacts (reported, not enforced)
    wrap_up_s: float = 0.0  # after an item of this queue finishes, the agent wraps up this long
    overflow: tuple[OverflowStep, ...] = ()
    keep_on_disconnect: bool = False  # digital work stays with a disconnected agent
    disconnect_grace_s: float = 60.0  # else it is requeued after this grace period
    reoffer_delay_s: float = 30.0  # an agent who declined/missed an item skips it this long
    preferred_window_s: float = 0.0  # default window for a work item's preferred agent

    def __post_init__(self) -> None:
        if not self.queue_id:
            raise ConfigError("queue_id", "empty queue id")
        object.__setattr__(self, "skills", requirements(list(self.skills)))
        object.__setattr__(self, "mode", _enum(Mode, "mode", self.mode))
        _check_time("offer_ttl_s", self.offer_ttl_s, positive=True)
        _check_time("sl_target_s", self.sl_target_s)
        _check_time("wrap_up_s", self.wrap_up_s)
        _check_time("disconnect_grace_s", self.disconnect_grace_s)
        _check_time("reoffer_delay_s", self.reoffer_delay_s)
        _check_time("preferred_window_s", self.preferred_window_s)
        if not 0.0 <= self.sl_target_pct <= 1.0:
            raise ConfigError("sl_target_pct", "must be within 0..1")
        steps = tuple(sorted(self.overflow, key=lambda s: s.after_s))
        object.__setattr__(self, "overflow", steps)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Router-wide settings."""

    max_missed: int = 3  # consecutive expired offers before the agent is set not-ready "missed"
    missed_reason: str = "missed"

    def __post_init__(self) -> None:
        if self.max_missed < 1:
            raise ConfigError("max_missed", "must be at least 1")


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """Who an agent is for routing: skills with levels 1-5 and capacity."""

    agent_id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: Capacity = field(default_factory=Capacity)

    def __post_init__(self) -> None:
        if not self.agent_id:
            raise ConfigError("agent_id", "empty agent id")
        for s, lvl in self.skills.items():
            _check_level(f"skills.{s}", lvl)
        object.__setattr__(self, "skills", MappingProxyType(dict(self.skills)))

    def __hash__(self) -> int:
        return hash((self.agent_id, tuple(sorted(self.skills.items())), self.capacity))


@dataclass(frozen=True, slots=True)
class Work:
    """A routable item (a call, chat, email, SMS or fax conversation) waiting in a queue.

    ``arrival`` is when it entered the queue (kept across offers, requeues and restarts: it is the
    FIFO position and the service-level clock). Higher ``priority`` is served first. ``skills``
    overrides the queue's requirements for this item. ``preferred_agent`` gets the first offer
    for ``preferred_window_s`` seconds after arrival (None: the queue's default window).
    ``overflow_done`` counts overflow steps already applied (for restore after a restart).
    """

    work_id: str
    queue_id: str
    medium: Medium
    arrival: float
    priority: int = 0
    skills: Requirements | None = None
    preferred_agent: str | None = None
    preferred_window_s: float | None = None
    overflow_done: int = 0

    def __post_init__(self) -> None:
        if not self.work_id:
            raise ConfigError("work_id", "empty work id")
        if not self.queue_id:
            raise ConfigError("queue_id", "empty queue id")
        object.__setattr__(self, "medium", _enum(Medium, "medium", self.medium))
        if not math.isfinite(self.arrival):
            raise ConfigError("arrival", "not a finite time")
        if self.skills is not None:
            object.__setattr__(self, "skills", requirements(list(self.skills)))
        if self.preferred_window_s is not None:
            _check_time("preferred_window_s", self.preferred_window_s)
        if self.overflow_done < 0:
            raise ConfigError("overflow_done", "negative")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate weighed in a decision: an agent (offering work) or a work item (choosing
    the next item for an agent). ``key`` is the sort key, smallest wins."""

    id: str
    key: tuple[float, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a command was issued, for the audit trail: the rule applied, a human sentence, how
    many candidates were eligible (``considered``) and the ones inspected (winner first)."""

    rule: str
    text: str
    considered: int = 0
    candidates: tuple[Candidate, ...] = ()
