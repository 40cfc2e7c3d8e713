"""Erlang B/C formulas: the textbook prediction the service-level benchmark checks against.

Computed with the iterative Erlang B recurrence B(0)=1, B(n) = A·B(n-1) / (n + A·B(n-1)), which
never forms A^n or n! and so stays accurate for thousands of agents.
"""

from __future__ import annotations

import math


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability with ``agents`` servers offered ``traffic`` erlangs."""
    if agents < 0 or traffic < 0 or not math.isfinite(traffic):
        raise ValueError("agents and traffic must be non-negative and finite")
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability an arriving contact has to wait (M/M/N); 1.0 when the queue is unstable."""
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


def service_level(lambda_per_s: float, aht_s: float, agents: int, target_s: float) -> float:
    """Share of contacts answered within ``target_s``: 1 - C·e^{-(N-A)·t/AHT}."""
    traffic = lambda_per_s * aht_s
    if agents <= traffic:
        return 0.0
    c = erlang_c(agents, traffic)
    return 1.0 - c * math.exp(-(agents - traffic) * target_s / aht_s)
