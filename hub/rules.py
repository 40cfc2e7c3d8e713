"""Declarative routing rules: which queue and priority a new conversation gets.

Pure functions over plain values so they are easy to test and to explain to an admin. Rules are
evaluated in ``position`` order; every matching rule adds its priority, the first matching rule
with a queue picks the queue, and a rule with ``stop`` ends evaluation once it matched.

Conditions (all given ones must hold):
- ``channel``: a kind or list of kinds (``email``, ``sms`` ...)
- ``address``: our address(es) the message came in on (mailbox, number, site key)
- ``keywords``: any of these words in the subject or text (case-insensitive, whole words)
- ``contact``: contact attributes that must be equal, e.g. ``{vip: true}``
- ``metadata``: channel metadata that must be equal (e.g. IVR choice ``{ivr: "2"}``)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOWED_CONDITIONS = frozenset({"channel", "address", "keywords", "contact", "metadata"})


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    position: int
    conditions: Mapping[str, Any]
    queue_id: str | None = None
    priority: int = 0
    stop: bool = True


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule may look at for one new conversation."""

    channel: str
    address: str | None
    text: str
    contact_attributes: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    queue_id: str | None
    priority: int
    matched: tuple[str, ...]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _matches(cond: Mapping[str, Any], facts: Facts) -> bool:
    if "channel" in cond and facts.channel not in _as_list(cond["channel"]):
        return False
    if "address" in cond:
        wanted = {str(a).lower() for a in _as_list(cond["address"])}
        if (facts.address or "").lower() not in wanted:
            return False
    if "keywords" in cond:
        words = [re.escape(str(k)) for k in _as_list(cond["keywords"])]
        if not re.search(r"\b(?:" + "|".join(words) + r")\b", facts.text, re.IGNORECASE):
            return False
    for key, source in (("contact", facts.contact_attributes), ("metadata", facts.metadata)):
        if key in cond:
            expected: Mapping[str, Any] = cond[key]
            if any(source.get(k) != v for k, v in expected.items()):
                return False
    return True


def decide(rules: Sequence[Rule], facts: Facts, *, fallback_queue: str | None) -> Decision:
    """Apply ``rules`` to ``facts``; ``fallback_queue`` is the channel's own queue, if any."""
    queue: str | None = None
    priority = 0
    matched: list[str] = []
    for rule in sorted(rules, key=lambda r: (r.position, r.name)):
        if not _matches(rule.conditions, facts):
            continue
        matched.append(rule.name)
        priority += rule.priority
        if queue is None and rule.queue_id is not None:
            queue = rule.queue_id
        if rule.stop:
            break
    return Decision(queue or fallback_queue, priority, tuple(matched))
