"""``GET /api/media/{sha256}``: recordings, fax pages and files by content hash, with seeking.

Access: QA, supervisors and admins may fetch any stored object; an agent only one referenced by
an attachment of a conversation they can see (:func:`hub.actions.access.can_view`); anything
else is 404, so hashes do not leak existence. Every served request (200, 206 and 416) is
written to ``media_access`` (who, which object, when, which range) and supervisors read it at
``/api/media/{sha256}/access-log``. The file's checksum is verified before it is first served
(and again whenever its size or mtime changes), so a corrupt file is never played.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from hub.actions.access import can_view
from hub.api.framework import ALL_STAFF, SUPERVISORS, Api, Context
from hub.db.models import AttachmentRecord, Conversation, Interaction, MediaAccess, User
from hub.domain import Role
from hub.errors import ApiError, NotFound
from hub.web import ATTACHMENT_CSP, COMMON_HEADERS, INLINE_TYPES
from recorder.media import (
    ByteRange,
    MediaNotFoundError,
    MediaStore,
    RangeNotSatisfiableError,
    parse_range,
)

log = logging.getLogger(__name__)
api = Api()

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_CONVERSATIONS_CHECKED = 50
_verified: dict[str, tuple[int, int]] = {}  # file path -> (size, mtime_ns) last verified


class MediaQuery(BaseModel):
    download: bool = Field(default=False, description="1: serve as an attachment download")


class AccessLogQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=1000)


class AccessOut(BaseModel):
    user_id: str | None
    email: str | None
    name: str | None
    at: str
    range: str | None
    status: int


class AccessLogOut(BaseModel):
    items: list[AccessOut]


def _store(ctx: Context) -> MediaStore:
    media = ctx.services.extras.get("media")
    if not isinstance(media, MediaStore):
        raise ApiError("the media store is not running", code="media_unavailable", status=503)
    return media


def _key(ctx: Context) -> str:
    key = ctx.path["sha256"].lower()
    if not _SHA_RE.match(key):
        raise NotFound("no such media object")
    return key


async def _allowed(ctx: Context, key: str) -> AttachmentRecord | None:
    """Whether the caller may fetch ``key``; returns an attachment naming it, if any."""
    async with ctx.services.sessions() as session:
        rows = await session.execute(
            select(AttachmentRecord, Conversation)
            .join(Interaction, Interaction.id == AttachmentRecord.interaction_id)
            .join(Conversation, Conversation.id == Interaction.conversation_id)
            .where(AttachmentRecord.sha256 == key)
            .limit(_MAX_CONVERSATIONS_CHECKED)
        )
        first: AttachmentRecord | None = None
        for record, conv in rows:
            first = first or record
            if ctx.user.role is not Role.AGENT:
                return record
            if await can_view(session, ctx.user, conv):
                return record
    if ctx.user.role is not Role.AGENT and first is None:
        return None  # staff may fetch unreferenced objects too (checked against the store)
    raise NotFound("no such media object")


async def _verify(media: MediaStore, key: str) -> None:
    file = media.path(key)
    path = str(file)
    stat = file.stat()
    fingerprint = (stat.st_size, stat.st_mtime_ns)
    if _verified.get(path) == fingerprint:
        return
    if not await media.verify(key):
        _verified.pop(path, None)
        raise ApiError("stored media failed its checksum", code="media_corrupt", status=500)
    _verified[path] = fingerprint


async def _log(ctx: Context, key: str, rng: str | None, status: int) -> None:
    async with ctx.services.sessions() as session, session.begin():
        session.add(MediaAccess(user_id=ctx.user.user_id, sha256=key, range=rng, status=status))
    log.info("media access user=%s key=%s status=%d", ctx.user.user_id, key[:12], status)


def _disposition(filename: str, inline: bool) -> str:
    safe = "".join(ch for ch in filename if ch.isascii() and ch.isprintable() and ch not in '"\\')
    return f'{"inline" if inline else "attachment"}; filename="{safe or "media"}"'


@api.route("GET", "/api/media/{sha256}", roles=ALL_STAFF, query=MediaQuery, tag="media")
async def get_media(ctx: Context) -> Response:
    """A stored object by SHA-256, with HTTP Range (206/416); every access is logged."""
    key = _key(ctx)
    q: MediaQuery = ctx.query
    record = await _allowed(ctx, key)
    media = _store(ctx)
    try:
        size = await media.size(key)
        await _verify(media, key)
        declared = record.content_type if record else await media.content_type(key)
    except MediaNotFoundError:
        if record is not None:
            log.error("media %s referenced by attachment %s is missing", key[:12], record.id)
        raise NotFound("no such media object") from None
    content_type = declared.split(";")[0].strip().lower() or "application/octet-stream"
    inline = content_type in INLINE_TYPES and not q.download
    headers: dict[str, Any] = {
        **COMMON_HEADERS,
        "Content-Security-Policy": ATTACHMENT_CSP,
        "Content-Disposition": _disposition(record.filename if record else key[:16], inline),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
    }
    raw_range = ctx.request.headers.get("range")
    try:
        wanted = parse_range(raw_range, size)
    except RangeNotSatisfiableError as exc:
        await _log(ctx, key, (raw_range or "")[:100], 416)
        return Response(
            status_code=416, headers={**COMMON_HEADERS, "Content-Range": exc.content_range}
        )
    media_type = content_type  # the disposition, nosniff and the sandbox CSP keep it passive
    if wanted is None:
        await _log(ctx, key, None, 200)
        headers["Content-Length"] = str(size)
        whole = ByteRange(0, size - 1, size)  # never stream past the declared length
        return StreamingResponse(
            media.iter_range(key, whole), media_type=media_type, headers=headers
        )
    await _log(ctx, key, wanted.content_range, 206)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = wanted.content_range
    return StreamingResponse(
        media.iter_range(key, wanted), status_code=206, media_type=media_type, headers=headers
    )


@api.route(
    "GET",
    "/api/media/{sha256}/access-log",
    roles=SUPERVISORS,
    query=AccessLogQuery,
    response=AccessLogOut,
    tag="media",
)
async def access_log(ctx: Context) -> AccessLogOut:
    """Who fetched this object and when, newest first."""
    key = _key(ctx)
    q: AccessLogQuery = ctx.query
    async with ctx.services.sessions() as session:
        rows = await session.execute(
            select(MediaAccess, User.email, User.name)
            .outerjoin(User, User.id == MediaAccess.user_id)
            .where(MediaAccess.sha256 == key)
            .order_by(MediaAccess.at.desc(), MediaAccess.id.desc())
            .limit(q.limit)
        )
        return AccessLogOut(
            items=[
                AccessOut(
                    user_id=row.user_id,
                    email=email,
                    name=name,
                    at=row.at.isoformat(),
                    range=row.range,
                    status=row.status,
                )
                for row, email, name in rows
            ]
        )
