"""``GET /api/search``: full-text search over every recorded interaction.

Lists in query parameters are comma-separated (``channel=email,sms``); ``from`` is inclusive and
``to`` exclusive (ISO 8601 with a zone). Agents see only what :mod:`hub.search.visibility`
allows: conversations of queues they are qualified for, and conversations currently assigned to
them. ``qa_min``/``qa_max`` match every interaction of a conversation whose latest QA
evaluation scored in the range (0-100).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from hub.api.framework import ALL_STAFF, Api, Context
from hub.errors import ApiError
from hub.search.service import SearchService
from hub.search.visibility import visibility_for
from recorder.search import (
    IndexUnavailableError,
    InvalidQueryError,
    SearchFilters,
    SearchHit,
    SearchQuery,
    Sort,
)

api = Api()
SNIPPET = 300  # characters of plain text returned when a field has no highlight


class SearchParamsBase(BaseModel):
    """Every parameter but ``from`` (a Python keyword: added by ``create_model`` below so the
    OpenAPI document and validation both use the real name)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(default="", max_length=1000)
    channel: str | None = Field(default=None, description="comma-separated channels")
    queue: str | None = Field(default=None, description="comma-separated queue ids")
    agent: str | None = Field(default=None, description="comma-separated agent ids")
    contact: str | None = Field(default=None, description="comma-separated contact ids")
    conversation: str | None = Field(default=None, description="comma-separated ids")
    direction: str | None = None
    kind: str | None = Field(default=None, description="email, sms, fax, chat, note, ...")
    to: datetime | None = Field(default=None, description="exclusive, ISO 8601 with zone")
    has_recording: bool | None = None
    qa_min: float | None = Field(
        default=None, description="conversations whose latest QA score is at least this"
    )
    qa_max: float | None = Field(
        default=None, description="conversations whose latest QA score is at most this"
    )
    facets: str | None = Field(default=None, description="channel,queue,agent,direction,kind")
    sort: Literal["relevance", "time_desc", "time_asc"] = "relevance"
    limit: int = Field(default=20, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=4000)


SearchParams = create_model(
    "SearchParams",
    __base__=SearchParamsBase,
    **{"from": (datetime | None, Field(default=None, description="inclusive, ISO 8601"))},  # type: ignore[call-overload]
)


class HitOut(BaseModel):
    id: str
    conversation_id: str
    contact_id: str
    channel: str
    direction: str
    kind: str
    at: str
    subject: str
    text: str
    queue: str | None
    agent: str | None
    has_recording: bool
    qa_score: float | None
    score: float | None
    highlights: dict[str, str]


class SearchOut(BaseModel):
    hits: list[HitOut]
    total: int
    total_exact: bool
    facets: dict[str, dict[str, int]]
    next_cursor: str | None


def _set(raw: str | None) -> frozenset[str]:
    return frozenset(v.strip() for v in (raw or "").split(",") if v.strip())


def _hit(hit: SearchHit) -> HitOut:
    d = hit.doc
    return HitOut(
        id=d.id,
        conversation_id=d.conversation_id,
        contact_id=d.contact_id,
        channel=d.channel,
        direction=d.direction,
        kind=d.kind,
        at=d.at.isoformat(),
        subject=d.subject,
        text=d.text[:SNIPPET],
        queue=d.queue,
        agent=d.agent,
        has_recording=d.has_recording,
        qa_score=d.qa_score,
        score=hit.score,
        highlights=dict(hit.highlights),
    )


def _invalid(exc: InvalidQueryError) -> ApiError:
    field = {
        "channels": "channel",
        "directions": "direction",
        "at_from": "from",
        "at_to": "to",
    }.get(exc.field or "", exc.field)
    return ApiError(exc.message, code=exc.code, status=400, data={"field": field})


def search_service(ctx: Context) -> SearchService:
    service = ctx.services.extras.get("search")
    if not isinstance(service, SearchService):
        raise ApiError("search is not running", code="search_unavailable", status=503)
    return service


def build_query(q: SearchParamsBase, visibility: Any) -> SearchQuery:
    try:
        filters = SearchFilters(
            channels=_set(q.channel),
            queues=_set(q.queue),
            agents=_set(q.agent),
            contacts=_set(q.contact),
            conversations=_set(q.conversation),
            directions=_set(q.direction),
            kinds=_set(q.kind),
            at_from=getattr(q, "from", None),
            at_to=q.to,
            has_recording=q.has_recording,
            qa_min=q.qa_min,
            qa_max=q.qa_max,
        )
        return SearchQuery(
            text=q.text,
            filters=filters,
            visibility=visibility,
            facets=_set(q.facets),
            sort=Sort(q.sort),
            limit=q.limit,
            cursor=q.cursor or None,
        )
    except InvalidQueryError as exc:
        raise _invalid(exc) from None


@api.route(
    "GET", "/api/search", roles=ALL_STAFF, query=SearchParams, response=SearchOut, tag="search"
)
async def search(ctx: Context) -> SearchOut:
    """Search interactions: words ANDed, "phrases", -excluded; filters, facets, highlights."""
    q: SearchParamsBase = ctx.query
    service = search_service(ctx)
    async with ctx.services.sessions() as session:
        visibility = await visibility_for(session, ctx.user)
    query = build_query(q, visibility)
    if service.index is None:
        raise ApiError(
            service.unavailable_reason,
            code="search_unavailable",
            status=503,
            data={"retry_after_s": 5},
        )
    try:
        result = await service.index.search(query)
    except InvalidQueryError as exc:
        raise _invalid(exc) from None
    except IndexUnavailableError as exc:
        raise ApiError(exc.message, code=exc.code, status=503, data={"retry_after_s": 5}) from None
    return SearchOut(
        hits=[_hit(h) for h in result.hits],
        total=result.total,
        total_exact=result.total_exact,
        facets={k: dict(v) for k, v in result.facets.items()},
        next_cursor=result.next_cursor,
    )
