"""What each role may find in search.

Decision (documented in the API): QA, supervisors and admins search everything. An agent finds
interactions of conversations (a) in a queue whose required skills they all hold at the
required minimum level, or (b) currently assigned to them. The restriction is enforced inside
the index (totals and facet counts included), so nothing leaks through counts. A conversation
in no queue is visible to an agent only while assigned to them.

"Currently" is kept true by the indexer, not here: each doc's ``agent`` label is the
conversation's assignee *now*, because every log entry that can change it (assignment,
transfer, merge, status change such as requeue or reopen) re-indexes the conversation's docs
(:func:`hub.search.docs.relabels_conversation`). Having held a conversation once grants nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth.sessions import Principal
from hub.db.models import AgentSkill, Queue, Skill
from hub.domain import Role
from recorder.search import Visibility


def qualifies(required: list[Any], levels: dict[str, int]) -> bool:
    """Whether skill ``levels`` (name -> level) meet every ``{"skill", "min_level"}``."""
    for req in required:
        if not isinstance(req, dict):
            return False
        name = str(req.get("skill", ""))
        if levels.get(name, -1) < int(req.get("min_level", 1) or 1):
            return False
    return True


async def visibility_for(session: AsyncSession, who: Principal) -> Visibility:
    if who.role is not Role.AGENT:
        return Visibility()
    if who.agent_id is None:
        return Visibility(queues=frozenset(), agents=frozenset())
    levels = {
        name: level
        for name, level in (
            await session.execute(
                select(Skill.name, AgentSkill.level)
                .join(AgentSkill, AgentSkill.skill_id == Skill.id)
                .where(AgentSkill.agent_id == who.agent_id)
            )
        )
    }
    queues = frozenset(
        qid
        for qid, required in (await session.execute(select(Queue.id, Queue.required_skills)))
        if qualifies(list(required or []), levels)
    )
    return Visibility(queues=queues, agents=frozenset({who.agent_id}))
