"""Typed, time-ordered string IDs.

IDs are ``<prefix>_<26 chars>``: a 48-bit millisecond timestamp and 80 random bits in Crockford
base32, so they sort by creation time (useful for cursors and logs) and never collide across hub
processes without coordination. The prefix tells a reader what an ID names.
"""

from __future__ import annotations

import secrets
import time
from typing import NewType

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

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


def new_id(entity: str) -> str:
    """A fresh ID for ``entity`` (a key of :data:`PREFIXES`)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{PREFIXES[entity]}_{''.join(reversed(chars))}"
