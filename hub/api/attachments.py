"""``POST /api/attachments``: an agent uploads a file to send with a reply.

The body is the file's raw bytes (``Content-Type`` is the file's type, ``?filename=`` its name);
the hub checks the type against ``HUB_REPLY_ATTACHMENT_TYPES`` and the size against
``HUB_REPLY_ATTACHMENT_MAX_BYTES`` while streaming (nothing over the limit is buffered), stores
the bytes in the content-addressed media store and answers with an upload ``token``. The reply
(``POST /api/conversations/{id}/messages`` with ``attachments: [token]``) turns tokens back into
files. A token is an HMAC-signed statement "user U uploaded object S as name N, type T, size Z,
valid until E": no table of pending uploads, no way to attach another user's upload or an object
one cannot read, and a tampered token is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import unicodedata
from dataclasses import dataclass

from pydantic import BaseModel, Field

from channels.base import Attachment
from hub.api.framework import AGENTS_UP, Api, Context
from hub.api.schemas import Strict
from hub.auth.sessions import Principal
from hub.errors import ApiError, TooLarge, ValidationFailed
from hub.settings import Settings
from recorder.media import MediaError, MediaStore, MediaTooLargeError
from recorder.media.sniff import sniff_content_type

log = logging.getLogger(__name__)
api = Api()

TOKEN_TTL_S = 24 * 3600
MAX_ATTACHMENTS = 10
# Types whose first bytes must match: a file claiming to be a PNG but holding HTML is refused.
_SNIFFABLE = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/tiff"}
)


@dataclass(frozen=True, slots=True)
class Upload:
    sha256: str
    filename: str
    content_type: str
    size: int


class UploadQuery(Strict):
    filename: str = Field(min_length=1, max_length=255)


class UploadOut(BaseModel):
    token: str
    filename: str
    content_type: str
    size: int
    sha256: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: Settings) -> bytes:
    secret = settings.resolved_secret().encode()
    return hashlib.sha256(b"contacthub reply upload\x00" + secret).digest()


def sign_upload(settings: Settings, user_id: str, up: Upload, now: float | None = None) -> str:
    claims = {
        "u": user_id,
        "s": up.sha256,
        "n": up.filename,
        "t": up.content_type,
        "z": up.size,
        "e": int((now or time.time()) + TOKEN_TTL_S),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{sig}"


def verify_upload(settings: Settings, who: Principal, token: str, index: int) -> Upload:
    """The upload a token names; 422 ``invalid_attachment`` (naming the list index) otherwise."""
    field = f"attachments.{index}"

    def bad(why: str) -> ValidationFailed:
        return ValidationFailed(f"{field}: {why}", code="invalid_attachment",
                                data={"field": field})

    payload, _, sig = token.partition(".")
    want = _b64(hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest())
    if not sig or not hmac.compare_digest(sig, want):
        raise bad("not an upload token of this hub (upload the file with POST /api/attachments)")
    try:
        claims = json.loads(_unb64(payload))
        up = Upload(str(claims["s"]), str(claims["n"]), str(claims["t"]), int(claims["z"]))
        expires, owner = int(claims["e"]), str(claims["u"])
    except (ValueError, KeyError, TypeError):
        raise bad("malformed upload token") from None
    if owner != who.user_id:
        raise bad("this file was uploaded by someone else")
    if expires < time.time():
        raise bad("the upload expired: attach the file again")
    return up


def clean_filename(raw: str) -> str:
    """A display/download name: no directories, no control characters, at most 255 chars."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255]


def _media(ctx: Context) -> MediaStore:
    media = ctx.services.extras.get("media")
    if not isinstance(media, MediaStore):
        raise ApiError("the media store is not running", code="media_unavailable", status=503)
    return media


@api.route(
    "POST",
    "/api/attachments",
    roles=AGENTS_UP,
    query=UploadQuery,
    response=UploadOut,
    status=201,
    tag="conversations",
)
async def upload(ctx: Context) -> UploadOut:
    """Upload one file (raw body, its type as Content-Type) to attach to a reply."""
    settings = ctx.services.settings
    q: UploadQuery = ctx.query
    filename = clean_filename(q.filename)
    if not filename:
        raise ValidationFailed("filename: no usable characters", data={"field": "filename"})
    declared = ctx.request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = settings.reply_attachment_type_set
    if declared not in allowed:
        raise ApiError(
            f"files of type {declared or '(none)'} cannot be attached; allowed: "
            + ", ".join(sorted(allowed)),
            code="attachment_type_not_allowed",
            status=415,
            data={"content_type": declared, "allowed": sorted(allowed)},
        )
    limit = settings.reply_attachment_max_bytes
    length = ctx.request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise TooLarge(f"{filename} is larger than {limit} bytes", code="attachment_too_large",
                       data={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in ctx.request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{filename} is larger than {limit} bytes",
                           code="attachment_too_large", data={"limit": limit})
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ValidationFailed("the file is empty", code="empty_attachment")
    if declared in _SNIFFABLE and sniff_content_type(data[:64]) != declared:
        raise ApiError(f"{filename} does not look like {declared}",
                       code="attachment_type_mismatch", status=415,
                       data={"content_type": declared})
    try:
        info = await _media(ctx).put(data, declared)
    except MediaTooLargeError as exc:  # the store's own ceiling is lower than the setting
        raise TooLarge(f"{filename} is larger than the media store accepts ({exc})",
                       code="attachment_too_large") from None
    up = Upload(info.key, filename, declared, size)
    log.info("reply upload by %s: %s, %d bytes, key %s", ctx.user.user_id, declared, size,
             info.key[:12])
    return UploadOut(token=sign_upload(settings, ctx.user.user_id, up), filename=filename,
                     content_type=declared, size=size, sha256=info.key)


async def reply_files(ctx: Context, tokens: list[str]) -> list[tuple[Attachment, str]]:
    """The files a reply's upload tokens name, with their bytes and media keys (422 if a token
    is invalid, expired, someone else's, or its object is gone from the media store)."""
    if not tokens:
        return []
    media = _media(ctx)
    out: list[tuple[Attachment, str]] = []
    for i, token in enumerate(tokens):
        up = verify_upload(ctx.services.settings, ctx.user, token, i)
        try:
            data = await media.read(up.sha256)
        except MediaError:
            raise ValidationFailed(f"attachments.{i}: the uploaded file is gone; attach it again",
                                   code="invalid_attachment",
                                   data={"field": f"attachments.{i}"}) from None
        out.append((Attachment(up.filename, up.content_type, data), up.sha256))
    return out
