"""The routing facts a ``conversation.queued`` event carries.

Why: the dispatcher turns each queued conversation into the router's work item. Reading the
row back after the writer's commit is a DB round trip on the path from a customer's arrival to
the agent's phone ringing; the writer already holds every fact the router needs, so it puts
them in the event (``data["work"]``). The dispatcher routes from them when they are complete
and reads the row otherwise (:mod:`hub.dispatch.changes`). The DB stays the truth: an offer for
a conversation that is no longer waiting is refused when it is written
(:mod:`hub.dispatch.executor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hub.db.models import Conversation
from hub.events import Event

WORK_KEY = "work"
WORK_FIELDS = (
    "status", "queue_id", "channel", "priority", "queued_at", "contact_id", "overflow_done",
)  # fmt: skip


def work_facts(
    *,
    status: str,
    queue_id: str | None,
    channel: str,
    priority: int,
    queued_at: datetime | None,
    contact_id: str,
    attributes: Mapping[str, Any],
) -> dict[str, Any]:
    """The facts, JSON-ready (the bus may carry events between processes)."""
    return {
        "status": status,
        "queue_id": queue_id,
        "channel": channel,
        "priority": priority,
        "queued_at": queued_at.isoformat() if queued_at is not None else None,
        "contact_id": contact_id,
        "overflow_done": int(attributes.get("overflow_done", 0)),
    }


def conversation_work(conv: Conversation) -> dict[str, Any]:
    """The facts of a conversation row as it is about to be committed."""
    return work_facts(
        status=conv.status,
        queue_id=conv.queue_id,
        channel=conv.channel,
        priority=conv.priority,
        queued_at=conv.queued_at or conv.created_at,
        contact_id=conv.contact_id,
        attributes=conv.attributes or {},
    )


def queued_event(conv: Conversation, rooms: tuple[str, ...]) -> Event:
    """``conversation.queued`` for ``conv``, with its routing facts."""
    return Event(
        "conversation.queued", {"id": conv.id, WORK_KEY: conversation_work(conv)}, rooms=rooms
    )
