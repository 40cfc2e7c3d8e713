"""Typed, time-ordered string IDs.

IDs are ``<prefix>_<26 chars>``: a 48-bit millisecond timestamp and 80 random bits in Crockford
base32, so they sort by creation time (useful for cursors and logs) and never collide across hub
processes without coordination. The prefix tells a reader what an ID names.
"""

from __future__ import annotations

import os
import time
from typing import NewType

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# every 10-bit value as its two base32 digits: an ID's 26 digits in 13 lookups
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_BATCH = 256  # random parts drawn from the OS per call
_random_parts: list[int] = []

ContactId = NewType("ContactId", str)
ConversationId = NewType("ConversationId", str)
InteractionId = NewType("InteractionId", str)
AgentId = NewType("AgentId", str)
QueueId = NewType("QueueId", str)
UserId = NewType("UserId", str)

PREFIXES = {
    "contact": "ct",
    "address": "ad",
    "conversation": "cv",
    "interaction": "ix",
    "agent": "ag",
    "queue": "qu",
    "user": "us",
    "skill": "sk",
    "channel": "ch",
    "offer": "of",
    "assignment": "as",
    "rule": "ru",
    "session": "se",
    "attachment": "at",
    "delivery": "dl",
}


def _random80() -> int:
    """80 random bits from the OS's CSPRNG, drawn ``_BATCH`` at a time.

    Why: one ``getrandom`` call per ID took ~5 µs on the busy chat hub (two IDs per
    message). ``list.pop`` is atomic, so threads never share a part; a forked child starts
    with an empty list (see ``register_at_fork`` below), so processes never share one either.
    """
    while True:
        try:
            return _random_parts.pop()
        except IndexError:
            block = os.urandom(10 * _BATCH)
            _random_parts.extend(
                int.from_bytes(block[i : i + 10], "big") for i in range(0, len(block), 10)
            )


os.register_at_fork(after_in_child=_random_parts.clear)


def new_id(entity: str) -> str:
    """A fresh ID for ``entity`` (a key of :data:`PREFIXES`)."""
    v = (int(time.time() * 1000) << 80) | _random80()
    p = _PAIRS  # 130 bits, the top two always 0, as 13 pairs of digits, most significant first
    return (
        f"{PREFIXES[entity]}_{p[v >> 120]}{p[(v >> 110) & 1023]}{p[(v >> 100) & 1023]}"
        f"{p[(v >> 90) & 1023]}{p[(v >> 80) & 1023]}{p[(v >> 70) & 1023]}"
        f"{p[(v >> 60) & 1023]}{p[(v >> 50) & 1023]}{p[(v >> 40) & 1023]}"
        f"{p[(v >> 30) & 1023]}{p[(v >> 20) & 1023]}{p[(v >> 10) & 1023]}{p[v & 1023]}"
    )
