"""Quality assurance API: scorecard forms, evaluations, agent score trends, team overview.

Roles: supervisors and admins manage forms; QA, supervisors and admins score and read every
evaluation; an agent reads only their own evaluations and trend (``agent=me`` or their id;
anything else is 404, like everything else they may not see). Time ranges: ``from``
inclusive, ``to`` exclusive, ISO 8601 with a zone; trend buckets are UTC days, ISO weeks
(starting Monday) or calendar months.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import Select, func, select

from hub.actions import qa as actions
from hub.api.framework import ALL_STAFF, QA_UP, SUPERVISORS, Api, Context
from hub.auth.sessions import Principal
from hub.db.models import Agent, QaEvaluation, QaForm, QaFormVersion, User
from hub.domain import Role
from hub.errors import ApiError, NotFound

api = Api()
MAX_BUCKETS = 400
DEFAULT_SPAN = timedelta(weeks=12)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FormOut(BaseModel):
    id: str
    version: int
    name: str
    description: str
    criteria: list[actions.Criterion]
    active: bool
    created_at: str


class FormList(BaseModel):
    items: list[FormOut]


class FormQuery(Strict):
    version: int | None = Field(default=None, ge=1)


class EvaluationIn(Strict):
    form_id: str = Field(min_length=1, max_length=32)
    conversation_id: str = Field(min_length=1, max_length=32)
    interaction_id: str | None = Field(default=None, max_length=32)
    agent_id: str | None = Field(default=None, max_length=32, description="default: who handled it")
    answers: dict[str, Any] = Field(description='criterion key -> 0..max, "yes"/"no", "na"')
    comment: str = Field(default="", max_length=10_000)


class EvaluationOut(BaseModel):
    id: str
    form_id: str
    form_version: int
    form_name: str
    conversation_id: str
    interaction_id: str | None
    agent_id: str | None
    evaluator_id: str | None
    evaluator_name: str | None
    answers: dict[str, Any]
    score: float
    comment: str
    log_interaction_id: str | None
    created_at: str


class EvaluationPage(BaseModel):
    items: list[EvaluationOut]
    next_cursor: str | None


class RangeBase(Strict):
    to: datetime | None = Field(default=None, description="exclusive, ISO 8601 with zone")


_FROM: Any = (datetime | None, Field(default=None, description="inclusive, ISO 8601 with zone"))


class EvaluationQueryBase(RangeBase):
    agent: str | None = Field(default=None, description="agent id or 'me'")
    conversation: str | None = None
    form: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=40)


class TrendQueryBase(RangeBase):
    bucket: Literal["day", "week", "month"] = "week"


EvaluationQuery = create_model("EvaluationQuery", __base__=EvaluationQueryBase, **{"from": _FROM})
TrendQuery = create_model("TrendQuery", __base__=TrendQueryBase, **{"from": _FROM})
TeamQuery = create_model("TeamQuery", __base__=RangeBase, **{"from": _FROM})


class TrendPoint(BaseModel):
    start: str
    average: float | None
    count: int


class TrendOut(BaseModel):
    agent_id: str
    bucket: str
    start: str
    end: str
    points: list[TrendPoint]
    average: float | None
    count: int


class TeamRow(BaseModel):
    agent_id: str
    name: str
    average: float
    count: int
    min: float
    max: float
    last_at: str


class TeamOut(BaseModel):
    start: str
    end: str
    agents: list[TeamRow]
    average: float | None
    count: int


def _form_out(form: QaForm, version: QaFormVersion) -> FormOut:
    return FormOut(
        id=form.id,
        version=version.version,
        name=version.name,
        description=version.description,
        criteria=[actions.Criterion.model_validate(c) for c in version.criteria],
        active=form.active,
        created_at=version.created_at.isoformat(),
    )


def _range(q: RangeBase) -> tuple[datetime, datetime]:
    end = q.to or datetime.now(UTC)
    start: datetime = getattr(q, "from", None) or end - DEFAULT_SPAN
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise ApiError(f"{name} needs a time zone", code="invalid_range", data={"field": name})
    if start >= end:
        raise ApiError("from must be before to", code="invalid_range", data={"field": "to"})
    return start.astimezone(UTC), end.astimezone(UTC)


def _own_agent(who: Principal, requested: str | None) -> str | None:
    """The agent filter a caller may use: agents are pinned to themselves."""
    if requested == "me":
        if who.agent_id is None:
            raise ApiError("you are not an agent", code="not_an_agent", data={"field": "agent"})
        return who.agent_id
    if who.role is Role.AGENT:
        if requested not in (None, who.agent_id):  # 404 like other hidden resources: no leak
            raise NotFound(f"agent {requested} not found")
        return who.agent_id or "-"
    return requested


# ---- forms -------------------------------------------------------------------------------


@api.route(
    "POST",
    "/api/qa/forms",
    roles=SUPERVISORS,
    body=actions.FormContent,
    response=FormOut,
    status=201,
    tag="qa",
)
async def create_form(ctx: Context) -> FormOut:
    """Create a scorecard form (version 1)."""
    async with ctx.services.sessions() as session, session.begin():
        form, version = await actions.do_create_form(session, ctx.user, ctx.body)
        return _form_out(form, version)


@api.route("GET", "/api/qa/forms", roles=ALL_STAFF, response=FormList, tag="qa")
async def list_forms(ctx: Context) -> FormList:
    """Active forms, each at its current version."""
    async with ctx.services.sessions() as session:
        rows = await session.execute(
            select(QaForm, QaFormVersion)
            .join(
                QaFormVersion,
                (QaFormVersion.form_id == QaForm.id)
                & (QaFormVersion.version == QaForm.current_version),
            )
            .where(QaForm.active.is_(True))
            .order_by(QaForm.name, QaForm.id)
        )
        return FormList(items=[_form_out(f, v) for f, v in rows])


@api.route(
    "GET", "/api/qa/forms/{id}", roles=ALL_STAFF, query=FormQuery, response=FormOut, tag="qa"
)
async def get_form(ctx: Context) -> FormOut:
    """A form at its current version, or at ``?version=N``."""
    async with ctx.services.sessions() as session:
        form, version = await actions.load_version(session, ctx.path["id"], ctx.query.version)
        return _form_out(form, version)


@api.route(
    "PUT",
    "/api/qa/forms/{id}",
    roles=SUPERVISORS,
    body=actions.FormContent,
    response=FormOut,
    tag="qa",
)
async def revise_form(ctx: Context) -> FormOut:
    """Edit a form: adds a new version; earlier evaluations keep theirs."""
    async with ctx.services.sessions() as session, session.begin():
        form, version = await actions.do_revise_form(session, ctx.user, ctx.path["id"], ctx.body)
        return _form_out(form, version)


@api.route("DELETE", "/api/qa/forms/{id}", roles=SUPERVISORS, response=FormOut, tag="qa")
async def archive_form(ctx: Context) -> FormOut:
    """Archive a form: no new evaluations with it; existing ones stay."""
    async with ctx.services.sessions() as session, session.begin():
        form, version = await actions.load_version(session, ctx.path["id"])
        form.active = False
        return _form_out(form, version)


# ---- evaluations -------------------------------------------------------------------------


def _evaluations() -> Select[QaEvaluation, QaFormVersion, str]:
    return (
        select(QaEvaluation, QaFormVersion, User.name)
        .join(QaFormVersion, QaFormVersion.id == QaEvaluation.form_version_id)
        .outerjoin(User, User.id == QaEvaluation.evaluator_id)
    )


def _evaluation_out(ev: QaEvaluation, version: QaFormVersion, who: str | None) -> EvaluationOut:
    return EvaluationOut(
        id=ev.id,
        form_id=ev.form_id,
        form_version=version.version,
        form_name=version.name,
        conversation_id=ev.conversation_id,
        interaction_id=ev.interaction_id,
        agent_id=ev.agent_id,
        evaluator_id=ev.evaluator_id,
        evaluator_name=who,
        answers=ev.answers,
        score=ev.score,
        comment=ev.comment,
        log_interaction_id=ev.log_interaction_id,
        created_at=ev.created_at.isoformat(),
    )


@api.route(
    "POST",
    "/api/qa/evaluations",
    roles=QA_UP,
    body=EvaluationIn,
    response=EvaluationOut,
    status=201,
    tag="qa",
)
async def evaluate(ctx: Context) -> EvaluationOut:
    """Score a conversation (or one interaction of it) with a form; the score is computed here."""
    body: EvaluationIn = ctx.body
    async with ctx.services.sessions() as session, session.begin():
        ev, version, events = await actions.do_evaluate(
            session,
            ctx.user,
            form_id=body.form_id,
            conversation_id=body.conversation_id,
            interaction_id=body.interaction_id,
            agent_id=body.agent_id,
            answers=body.answers,
            comment=body.comment,
        )
        out = _evaluation_out(ev, version, ctx.user.name)
    await ctx.services.bus.publish(events)  # after commit: wakes the search indexer
    return out


@api.route(
    "GET",
    "/api/qa/evaluations",
    roles=ALL_STAFF,
    query=EvaluationQuery,
    response=EvaluationPage,
    tag="qa",
)
async def list_evaluations(ctx: Context) -> EvaluationPage:
    """Evaluations newest first; agents get only their own."""
    q: EvaluationQueryBase = ctx.query
    agent = _own_agent(ctx.user, q.agent)
    stmt = _evaluations()
    if agent is not None:
        stmt = stmt.where(QaEvaluation.agent_id == agent)
    if q.conversation:
        stmt = stmt.where(QaEvaluation.conversation_id == q.conversation)
    if q.form:
        stmt = stmt.where(QaEvaluation.form_id == q.form)
    if getattr(q, "from", None) is not None or q.to is not None:
        start, end = _range(q)
        stmt = stmt.where(QaEvaluation.created_at >= start, QaEvaluation.created_at < end)
    if q.cursor:
        stmt = stmt.where(QaEvaluation.id < q.cursor)
    stmt = stmt.order_by(QaEvaluation.id.desc()).limit(q.limit + 1)
    async with ctx.services.sessions() as session:
        rows = list(await session.execute(stmt))
    more = len(rows) > q.limit
    items = [_evaluation_out(ev, v, n) for ev, v, n in rows[: q.limit]]
    return EvaluationPage(items=items, next_cursor=items[-1].id if more and items else None)


@api.route("GET", "/api/qa/evaluations/{id}", roles=ALL_STAFF, response=EvaluationOut, tag="qa")
async def get_evaluation(ctx: Context) -> EvaluationOut:
    """One evaluation (an agent only their own; otherwise 404)."""
    async with ctx.services.sessions() as session:
        stmt = _evaluations().where(QaEvaluation.id == ctx.path["id"])
        row = (await session.execute(stmt)).first()
    if row is None or (ctx.user.role is Role.AGENT and row[0].agent_id != ctx.user.agent_id):
        raise NotFound(f"evaluation {ctx.path['id']} not found")
    ev, version, who = row
    return _evaluation_out(ev, version, who)


# ---- trends ------------------------------------------------------------------------------


def bucket_start(at: datetime, bucket: str) -> datetime:
    """The UTC start of the day, ISO week (Monday) or month holding ``at``."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def next_bucket(start: datetime, bucket: str) -> datetime:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(weeks=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


@api.route(
    "GET",
    "/api/qa/agents/{id}/trend",
    roles=ALL_STAFF,
    query=TrendQuery,
    response=TrendOut,
    tag="qa",
)
async def agent_trend(ctx: Context) -> TrendOut:
    """Average score and count per bucket for one agent (``me`` for yourself); empty buckets
    are listed with ``count`` 0 so a chart keeps its time axis."""
    q: TrendQueryBase = ctx.query
    agent = _own_agent(ctx.user, ctx.path["id"])
    assert agent is not None
    start, end = _range(q)
    starts = [bucket_start(start, q.bucket)]
    while (nxt := next_bucket(starts[-1], q.bucket)) < end:
        starts.append(nxt)
        if len(starts) > MAX_BUCKETS:
            raise ApiError(
                f"over {MAX_BUCKETS} buckets: use a coarser bucket",
                code="too_many_buckets",
                data={"field": "bucket"},
            )
    async with ctx.services.sessions() as session:
        if await session.get(Agent, agent) is None:
            raise NotFound(f"agent {agent} not found")
        rows = await session.execute(
            select(QaEvaluation.created_at, QaEvaluation.score).where(
                QaEvaluation.agent_id == agent,
                QaEvaluation.created_at >= start,
                QaEvaluation.created_at < end,
            )
        )
        scores: dict[datetime, list[float]] = {s: [] for s in starts}
        every: list[float] = []
        for at, score in rows:
            scores.setdefault(bucket_start(at, q.bucket), []).append(score)
            every.append(score)
    points = [
        TrendPoint(start=s.isoformat(), average=_avg(v), count=len(v))
        for s, v in sorted(scores.items())
    ]
    return TrendOut(
        agent_id=agent,
        bucket=q.bucket,
        start=start.isoformat(),
        end=end.isoformat(),
        points=points,
        average=_avg(every),
        count=len(every),
    )


@api.route("GET", "/api/qa/team", roles=QA_UP, query=TeamQuery, response=TeamOut, tag="qa")
async def team_overview(ctx: Context) -> TeamOut:
    """Per agent in the range: average, count, lowest, highest and latest evaluation."""
    start, end = _range(ctx.query)
    stmt = (
        select(
            QaEvaluation.agent_id,
            Agent.display_name,
            func.avg(QaEvaluation.score),
            func.count(),
            func.min(QaEvaluation.score),
            func.max(QaEvaluation.score),
            func.max(QaEvaluation.created_at),
        )
        .join(Agent, Agent.id == QaEvaluation.agent_id)
        .where(QaEvaluation.created_at >= start, QaEvaluation.created_at < end)
        .group_by(QaEvaluation.agent_id, Agent.display_name)
        .order_by(Agent.display_name)
    )
    async with ctx.services.sessions() as session:
        rows = list(await session.execute(stmt))
    agents = [
        TeamRow(
            agent_id=a,
            name=n,
            average=round(float(avg), 2),
            count=c,
            min=lo,
            max=hi,
            last_at=_utc(last).isoformat(),
        )
        for a, n, avg, c, lo, hi, last in rows
    ]
    count = sum(r.count for r in agents)
    total = sum(r.average * r.count for r in agents)
    return TeamOut(
        start=start.isoformat(),
        end=end.isoformat(),
        agents=agents,
        average=round(total / count, 2) if count else None,
        count=count,
    )


def _utc(value: Any) -> datetime:
    """``max(created_at)`` comes back raw on SQLite (a string or naive datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
