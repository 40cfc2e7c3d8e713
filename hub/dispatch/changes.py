"""Committed conversation changes (bus events) → the router's events.

Why a module of its own: this is the hot path from a customer's arrival to the router's
decision. A ``conversation.queued`` event carries the conversation's routing facts
(:mod:`hub.actions.queued`), so the router gets the work item without reading the row back
(a DB round trip before every offer). The row is read only when the facts are missing (an
older publisher), say the conversation is not queued (trust the DB then), for a supervisor's
assignment, and for the contact's last agent when the queue prefers it.

Routing from an event cannot make stale work real: the executor only offers conversations
still waiting in the DB (:func:`hub.dispatch.executor.execute`), and a refused offer rebuilds
the router from the DB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import Assignment, Conversation, Queue
from hub.dispatch.mapping import WorkFacts
from hub.domain import ConversationStatus
from routing import Router
from routing import events as rev
from routing.model import AgentProfile, Work

QUEUED = "conversation.queued"
NAMES = (QUEUED, "conversation.resolved", "conversation.assigned")


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    conv_id: str
    facts: WorkFacts | None = None  # from a queued event's payload, when complete


def change_of(name: str, data: Mapping[str, Any]) -> Change:
    conv_id = str(data["id"])
    facts = WorkFacts.of_event(conv_id, data) if name == QUEUED else None
    if facts is not None and facts.status != ConversationStatus.QUEUED.value:
        facts = None  # a publisher that says "not queued": let the row decide
    return Change(name, conv_id, facts)


def distinct_runs(changes: list[Change]) -> list[list[Change]]:
    """Split so that no run names a conversation twice: within a run the router's view of each
    conversation is the one before the run, as it would be one change at a time."""
    runs: list[list[Change]] = [[]]
    seen: set[str] = set()
    for c in changes:
        if c.conv_id in seen:
            runs.append([])
            seen.clear()
        runs[-1].append(c)
        seen.add(c.conv_id)
    return runs


async def preferred_agent(session: AsyncSession, queue: Queue, facts: WorkFacts) -> str | None:
    """The contact's last agent gets the first offer when the queue has a window."""
    if queue.preferred_agent_window_s <= 0:
        return None
    found = (
        await session.execute(
            select(Assignment.agent_id)
            .join(Conversation, Conversation.id == Assignment.conversation_id)
            .where(Conversation.contact_id == facts.contact_id, Conversation.id != facts.conv_id)
            .order_by(Assignment.started_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return None if found is None else str(found)


async def queued_work(session: AsyncSession, queues: Mapping[str, Queue], facts: WorkFacts) -> Work:
    queue = queues[facts.queue_id]
    return facts.work(queue.priority, preferred_agent=await preferred_agent(session, queue, facts))


async def change_events(
    session: AsyncSession,
    router: Router,
    changes: list[Change],
    now: float,
    queues: Mapping[str, Queue],
    profiles: Mapping[str, AgentProfile],
) -> list[rev.Event]:
    """The router events for ``changes`` (one run of :func:`distinct_runs`), in order."""
    need_row = [
        c.conv_id
        for c in changes
        if c.name == "conversation.assigned" or (c.name == QUEUED and c.facts is None)
    ]
    rows: dict[str, Conversation] = {}
    if need_row:
        found = await session.execute(select(Conversation).where(Conversation.id.in_(need_row)))
        rows = {conv.id: conv for conv in found.scalars()}
    feed: list[rev.Event] = []
    for change in changes:
        name, conv_id = change.name, change.conv_id
        view = router.work(conv_id)
        if view is not None:
            feed.append(
                rev.WorkFinished(conv_id, now)
                if view.status == "assigned"
                else rev.WorkWithdrawn(conv_id, now, reason=name.split(".")[1])
            )
        conv = rows.get(conv_id)
        if name == QUEUED:
            facts = change.facts
            if facts is None and conv is not None and _waiting(conv):
                facts = WorkFacts.of_row(conv)
            if facts is not None and facts.queue_id in queues:
                feed.append(rev.WorkQueued(await queued_work(session, queues, facts), now))
        elif conv is not None and conv.queue_id in queues and conv.assignee_id in profiles:
            work = WorkFacts.of_row(conv).work(queues[conv.queue_id or ""].priority)
            feed.append(rev.AssignmentRestored(work, conv.assignee_id or "", now))
    return feed


def _waiting(conv: Conversation) -> bool:
    return conv.status == ConversationStatus.QUEUED and conv.queue_id is not None
