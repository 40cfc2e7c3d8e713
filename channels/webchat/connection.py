"""Per-process socket state and room names: one room per visitor (all of its tabs), one per site
(availability broadcasts)."""

from __future__ import annotations

from dataclasses import dataclass

from channels.webchat.stores import Visitor


def visitor_room(site_key: str, visitor_id: str) -> str:
    return f"visitor:{site_key}:{visitor_id}"


def site_room(site_key: str) -> str:
    return f"site:{site_key}"


@dataclass(slots=True)
class Conn:
    """What the namespace knows about one connected socket (per process, never persisted)."""

    sid: str
    visitor: Visitor
    ip: str
    origin: str | None
    user_agent: str
