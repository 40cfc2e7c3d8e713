"""``GET /widget/files/{attachment_id}``: the files of a visitor's own web chat, for the widget.

``/api/media`` is for staff sessions; a visitor has none, so the widget's ``history`` carries
signed links (:mod:`hub.visitor_links`) and this endpoint serves exactly what a link names. The
signature is checked first (a forged link costs no DB work), then the expiry, then the DB must
still agree: the attachment belongs to a *message* (never a note or a call recording) of a
*webchat* conversation of an enabled site whose contact owns the visitor id, and its bytes are
the signed media key. Anything else is the same 404, so a link cannot probe what exists.

What is served: the stored bytes (checksum verified) with their declared type, ``nosniff``, the
sandbox CSP of staff media, ``inline`` only for the image types the widget shows (everything
else downloads), HTTP Range (206/416), CORS only for origins the site allows (a request whose
``Origin`` the site does not allow is refused; ``<img>`` and link navigations send none), and
every served request is written to ``media_access`` (``user_id`` empty: a visitor) plus one INFO
log line without the visitor id (an address).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from channels.base import AddressKind
from hub.db.models import (
    AttachmentRecord,
    ChannelInstance,
    ContactAddress,
    Conversation,
    Interaction,
    MediaAccess,
)
from hub.domain import Direction, InteractionKind
from hub.services import Services
from hub.visitor_links import URL_TTL_S, FileClaims, LinkRefused, not_found, parse_claims
from hub.web import ATTACHMENT_CSP, COMMON_HEADERS
from hub.wiring.webchat import site_config
from recorder.media import (
    ByteRange,
    MediaError,
    MediaNotFoundError,
    MediaStore,
    RangeNotSatisfiableError,
    parse_range,
)

log = logging.getLogger(__name__)

PATH = "/widget/files/{attachment_id}"
# the only types the widget shows inline; anything else is served as a download
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_verified: dict[str, tuple[int, int]] = {}  # file path -> (size, mtime_ns) last verified


@dataclass(frozen=True, slots=True)
class Served:
    record: AttachmentRecord
    site: ChannelInstance


async def _lookup(services: Services, claims: FileClaims) -> Served:
    """The attachment, if the DB still says it is a message file of this visitor's chat."""
    async with services.sessions() as session:
        row = (
            await session.execute(
                select(AttachmentRecord, ChannelInstance)
                .join(Interaction, Interaction.id == AttachmentRecord.interaction_id)
                .join(Conversation, Conversation.id == Interaction.conversation_id)
                .join(ChannelInstance, ChannelInstance.id == Conversation.channel_instance_id)
                .join(ContactAddress, ContactAddress.contact_id == Conversation.contact_id)
                .where(
                    AttachmentRecord.id == claims.attachment_id,
                    AttachmentRecord.sha256 == claims.sha256,
                    Interaction.conversation_id == claims.conversation_id,
                    Interaction.kind == InteractionKind.MESSAGE.value,
                    Interaction.direction.in_([Direction.INBOUND.value, Direction.OUTBOUND.value]),
                    Conversation.channel == "webchat",
                    ChannelInstance.kind == "webchat",
                    ChannelInstance.enabled.is_(True),
                    ContactAddress.kind == AddressKind.VISITOR.value,
                    ContactAddress.value == claims.visitor_id,
                )
                .limit(1)
            )
        ).first()
    if row is None:
        raise not_found()
    return Served(row[0], row[1])


def _cors(services: Services, site: ChannelInstance, origin: str | None) -> dict[str, str]:
    """CORS headers for ``origin`` if the site allows it; a page it does not allow is refused
    (requests without ``Origin``, such as ``<img>`` and link navigations, need none)."""
    if origin is None:
        return {"Vary": "Origin"}  # the same URL answers differently with an Origin
    try:
        allowed = site_config(site, services.settings.effective_public_url).origin_allowed(origin)
    except (ValueError, KeyError, TypeError):
        allowed = False
    if not allowed:
        raise LinkRefused(403, "origin_not_allowed", "this page's origin may not use the site")
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Content-Range, Content-Disposition, Accept-Ranges",
        "Vary": "Origin",
    }


def _disposition(filename: str, inline: bool) -> str:
    ascii_name = "".join(
        ch for ch in filename if ch.isascii() and ch.isprintable() and ch not in '"\\'
    )
    kind = "inline" if inline else "attachment"
    value = f'{kind}; filename="{ascii_name or "file"}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


async def _verify(media: MediaStore, key: str) -> bool:
    """Checksum the file before it is first served (and again if it changed on disk)."""
    file = media.path(key)
    stat = file.stat()
    fingerprint = (stat.st_size, stat.st_mtime_ns)
    if _verified.get(str(file)) == fingerprint:
        return True
    if not await media.verify(key):
        _verified.pop(str(file), None)
        return False
    _verified[str(file)] = fingerprint
    return True


async def _audit(services: Services, claims: FileClaims, rng: str | None, status: int) -> None:
    async with services.sessions() as session, session.begin():
        session.add(MediaAccess(user_id=None, sha256=claims.sha256, range=rng, status=status))
    log.info(
        "widget file access conversation=%s attachment=%s key=%s range=%s status=%d",
        claims.conversation_id, claims.attachment_id, claims.sha256[:12], rng, status,
    )  # fmt: skip


def _error(exc: LinkRefused, extra: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"code": exc.code, "message": str(exc), "data": {}},
        status_code=exc.status,
        headers={**COMMON_HEADERS, "Cache-Control": "no-store", **(extra or {})},
    )


async def serve_file(request: Request) -> Response:
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    try:
        claims = parse_claims(
            services.settings, request.path_params["attachment_id"], request.query_params,
            time.time(),
        )  # fmt: skip
        served = await _lookup(services, claims)
        cors = _cors(services, served.site, origin)
    except LinkRefused as exc:
        log.warning("widget file refused: %s (%d)", exc.code, exc.status)
        return _error(exc)
    if request.method == "OPTIONS":
        return Response(
            status_code=204,
            headers={
                **cors,
                "Access-Control-Allow-Methods": "GET, HEAD",
                "Access-Control-Allow-Headers": "Range",
                "Access-Control-Max-Age": "600",
            },
        )
    return await _send(request, services, claims, served.record, cors)


async def _send(
    request: Request,
    services: Services,
    claims: FileClaims,
    record: AttachmentRecord,
    cors: dict[str, str],
) -> Response:
    media = services.extras.get("media")
    try:
        if not isinstance(media, MediaStore):
            raise MediaError("no media store")
        size = await media.size(claims.sha256)
        intact = await _verify(media, claims.sha256)
    except MediaNotFoundError:
        log.error("widget file %s (%s) is not in the media store", record.id, claims.sha256[:12])
        return _error(not_found(), cors)
    except MediaError:
        log.error("widget file %s: the media store is not available", record.id)
        return _error(LinkRefused(503, "media_unavailable", "try again later"), cors)
    if not intact:
        log.error("widget file %s (%s) failed its checksum", record.id, claims.sha256[:12])
        return _error(LinkRefused(500, "media_corrupt", "the stored file is damaged"), cors)
    content_type = record.content_type.split(";")[0].strip().lower() or "application/octet-stream"
    inline = content_type in INLINE_IMAGES
    left = claims.expires - int(time.time())
    headers: dict[str, str] = {
        **COMMON_HEADERS,
        **cors,
        "Content-Security-Policy": ATTACHMENT_CSP,
        "Content-Disposition": _disposition(record.filename, inline),
        "Cross-Origin-Resource-Policy": "cross-origin",  # shown on the customer's pages
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={max(0, min(URL_TTL_S, left))}",
    }
    raw_range = request.headers.get("range")
    try:
        wanted = parse_range(raw_range, size)
    except RangeNotSatisfiableError as exc:
        await _audit(services, claims, (raw_range or "")[:100], 416)
        headers.pop("Content-Disposition")
        return Response(status_code=416, headers={**headers, "Content-Range": exc.content_range})
    if wanted is None:
        await _audit(services, claims, None, 200)
        headers["Content-Length"] = str(size)
        whole = ByteRange(0, size - 1, size)  # never stream past the declared length
        return StreamingResponse(
            media.iter_range(claims.sha256, whole), media_type=content_type, headers=headers
        )
    await _audit(services, claims, wanted.content_range, 206)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = wanted.content_range
    return StreamingResponse(
        media.iter_range(claims.sha256, wanted),
        status_code=206,
        media_type=content_type,
        headers=headers,
    )


def routes() -> list[BaseRoute]:
    """Mounted by ``create_app`` before the ``/widget`` static files."""
    return [Route(PATH, serve_file, methods=["GET", "OPTIONS"])]
