"""Quality assurance: scorecard forms, evaluations and their weighted score.

Forms are versioned: ``do_create_form`` makes version 1, ``do_revise_form`` adds version n+1
and never touches older versions, so an evaluation stays bound to the criteria it was scored
with. The score is computed here, never by the client: each answered criterion contributes
``weight * value / max`` (yes = 1, no = 0); criteria answered ``"na"`` drop out of both the sum
and the total weight; the result is scaled to 0-100.

An evaluation is also appended to the conversation's interaction log as an internal note whose
payload carries ``qa_score``, in the same transaction. The search outbox trigger picks the note
up like any insert, and the drainer re-indexes the *whole conversation* with its latest score
(:func:`hub.search.docs.relabels_conversation`), so ``/api/search?qa_min=`` finds every
message, call and transcript of a scored conversation; a crash before the index commit replays
the outbox row, so no score update is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.actions.log import append, interaction_dict
from hub.auth.sessions import Principal
from hub.db.base import utcnow
from hub.db.models import (
    Agent,
    Assignment,
    Conversation,
    Interaction,
    QaEvaluation,
    QaForm,
    QaFormVersion,
)
from hub.domain import ActorType, Direction, InteractionKind
from hub.errors import NotFound, ValidationFailed
from hub.events import Event
from hub.ids import new_id

log = logging.getLogger(__name__)

NA = "na"
_YES_NO = {"yes": 1.0, "no": 0.0}


def qa_id(prefix: str) -> str:
    """A time-ordered id like :func:`hub.ids.new_id`, with a QA prefix (``qf``/``qv``/``qe``)."""
    return prefix + new_id("rule")[2:]


class Criterion(BaseModel):
    """One line of a scorecard. ``scale`` answers are integers 0..``max``; ``yes_no`` answers
    are ``"yes"``/``"no"``; either may be ``"na"`` when ``na_allowed``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    label: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    weight: float = Field(gt=0, le=1000)
    kind: Literal["scale", "yes_no"] = "scale"
    max: int = Field(default=5, ge=1, le=10)
    na_allowed: bool = True


class FormContent(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    criteria: list[Criterion] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _unique_keys(self) -> FormContent:
        keys = [c.key for c in self.criteria]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"criterion keys must be unique: {', '.join(dupes)}")
        return self


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", code="invalid_answer", data={"field": field, "message": message}
    )


def answer_value(criterion: Criterion, raw: Any) -> float | None:
    """The 0..1 value of one answer, ``None`` for n/a; raises :class:`ValidationFailed`."""
    field = f"answers.{criterion.key}"
    if raw == NA:
        if not criterion.na_allowed:
            raise _invalid(field, "n/a is not allowed for this criterion")
        return None
    if criterion.kind == "yes_no":
        if not isinstance(raw, str) or raw not in _YES_NO:
            raise _invalid(field, 'answer "yes", "no" or "na"')
        return _YES_NO[raw]
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= criterion.max:
        raise _invalid(field, f'answer an integer 0..{criterion.max} or "na"')
    return raw / criterion.max


def weighted_score(criteria: Sequence[Criterion], answers: Mapping[str, Any]) -> float:
    """0-100, n/a criteria excluded from the weight; every criterion must be answered."""
    unknown = sorted(set(answers) - {c.key for c in criteria})
    if unknown:
        raise _invalid(f"answers.{unknown[0]}", "no such criterion on this form version")
    earned = total = 0.0
    for criterion in criteria:
        if criterion.key not in answers:
            raise _invalid(f"answers.{criterion.key}", "missing answer")
        value = answer_value(criterion, answers[criterion.key])
        if value is None:
            continue
        earned += criterion.weight * value
        total += criterion.weight
    if total == 0:
        raise _invalid("answers", "every criterion is n/a: nothing to score")
    return round(100 * earned / total, 2)


# ---- forms -------------------------------------------------------------------------------


async def do_create_form(
    session: AsyncSession, who: Principal, content: FormContent
) -> tuple[QaForm, QaFormVersion]:
    now = utcnow()
    form = QaForm(
        id=qa_id("qf"), name=content.name, current_version=1, created_at=now, updated_at=now
    )
    session.add(form)
    await session.flush()
    version = _version_row(form.id, 1, content, who, now)
    session.add(version)
    await session.flush()
    return form, version


async def do_revise_form(
    session: AsyncSession, who: Principal, form_id: str, content: FormContent
) -> tuple[QaForm, QaFormVersion]:
    """A new version; older versions and the evaluations pointing at them stay as they are."""
    form = await session.get(QaForm, form_id, with_for_update=True)
    if form is None:
        raise NotFound(f"form {form_id} not found")
    now = utcnow()
    form.current_version += 1
    form.name = content.name
    form.active = True
    form.updated_at = now
    version = _version_row(form.id, form.current_version, content, who, now)
    session.add(version)
    await session.flush()
    return form, version


def _version_row(
    form_id: str, number: int, content: FormContent, who: Principal, now: datetime
) -> QaFormVersion:
    return QaFormVersion(
        id=qa_id("qv"),
        form_id=form_id,
        version=number,
        name=content.name,
        description=content.description,
        criteria=[c.model_dump() for c in content.criteria],
        created_by=who.user_id,
        created_at=now,
    )


async def load_version(
    session: AsyncSession, form_id: str, version: int | None = None
) -> tuple[QaForm, QaFormVersion]:
    form = await session.get(QaForm, form_id)
    if form is None:
        raise NotFound(f"form {form_id} not found")
    number = form.current_version if version is None else version
    row = (
        await session.execute(
            select(QaFormVersion).where(
                QaFormVersion.form_id == form_id, QaFormVersion.version == number
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"form {form_id} has no version {number}")
    return form, row


# ---- evaluations -------------------------------------------------------------------------


async def _evaluated_agent(
    session: AsyncSession, conv: Conversation, ix: Interaction | None, explicit: str | None
) -> str:
    """Whose work is scored: the explicit agent, else the interaction's agent author, else the
    conversation's assignee, else its most recent assignment."""
    candidates: list[str | None] = [explicit]
    if explicit is None:
        if ix is not None and ix.actor_type == ActorType.AGENT.value:
            candidates.append(ix.actor_id)
        candidates.append(conv.assignee_id)
        candidates.append(
            (
                await session.execute(
                    select(Assignment.agent_id)
                    .where(Assignment.conversation_id == conv.id)
                    .order_by(Assignment.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        )
    for agent_id in candidates:
        if agent_id and await session.get(Agent, agent_id) is not None:
            return agent_id
        if explicit is not None:
            raise ValidationFailed(
                f"agent {explicit} not found", code="unknown_agent", data={"field": "agent_id"}
            )
    raise ValidationFailed(
        "no agent handled this conversation: pass agent_id",
        code="no_agent",
        data={"field": "agent_id"},
    )


async def do_evaluate(
    session: AsyncSession,
    who: Principal,
    *,
    form_id: str,
    conversation_id: str,
    interaction_id: str | None,
    agent_id: str | None,
    answers: Mapping[str, Any],
    comment: str,
) -> tuple[QaEvaluation, QaFormVersion, list[Event]]:
    """Score, store the evaluation and log it on the conversation (one transaction)."""
    form, version = await load_version(session, form_id)
    if not form.active:
        raise ValidationFailed(f"form {form_id} is archived", code="form_archived")
    criteria = [Criterion.model_validate(c) for c in version.criteria]
    score = weighted_score(criteria, answers)
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"conversation {conversation_id} not found")
    ix = None
    if interaction_id is not None:
        ix = await session.get(Interaction, interaction_id)
        if ix is None or ix.conversation_id != conv.id:
            raise NotFound(f"interaction {interaction_id} not found in {conversation_id}")
    agent = await _evaluated_agent(session, conv, ix, agent_id)
    evaluation = QaEvaluation(
        id=qa_id("qe"),
        form_id=form.id,
        form_version_id=version.id,
        conversation_id=conv.id,
        interaction_id=interaction_id,
        agent_id=agent,
        evaluator_id=who.user_id,
        answers=dict(answers),
        score=score,
        comment=comment,
        created_at=utcnow(),
    )
    session.add(evaluation)
    await session.flush()
    entry = await append(
        session,
        conv.id,
        kind=InteractionKind.NOTE,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.AGENT,
        actor_id=who.agent_id or who.user_id,
        text=f"QA evaluation: {score:g}/100 ({version.name}, version {version.version})",
        payload={
            "author_name": who.name,
            "qa_score": score,
            "qa": {
                "evaluation_id": evaluation.id,
                "form_id": form.id,
                "form_version": version.version,
                "agent_id": agent,
                "interaction_id": interaction_id,
            },
        },
    )
    evaluation.log_interaction_id = entry.id
    await session.flush()
    await session.refresh(entry, ["attachments"])
    rooms = [f"conversation:{conv.id}", f"queue:{conv.queue_id}"]
    if conv.assignee_id:
        rooms.append(f"agent:{conv.assignee_id}")
    log.info("qa evaluation %s of agent %s: %s", evaluation.id, agent, score)
    return (
        evaluation,
        version,
        [Event("interaction.created", interaction_dict(entry), rooms=tuple(rooms))],
    )
