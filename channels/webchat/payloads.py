"""Pure parsers for what a visitor's socket sends: untrusted JSON (and bytes) in, typed values out.

Nothing here does I/O, so every rule about the wire (required fields, sizes, accepted file types)
is testable on its own and documented in ``docs/widget-protocol.md``. A failed check raises
:class:`WidgetInputError`, a :class:`~channels.base.ParseError` carrying a stable wire ``code``
and the offending ``field``; the namespace turns it into the error ack
``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels.base import Attachment, ChannelError, ParseError
from channels.webchat.config import FieldType, FormField, Limits
from channels.webchat.stores import MarkStatus

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_TEL = re.compile(r"^\+?[0-9 ().-]{4,25}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class WidgetInputError(ParseError):
    """A visitor payload broke a rule; ``code`` is stable and goes to the client as is."""

    def __init__(
        self, message: str, *, code: str = "invalid_payload", field: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.code = code


def error_ack(exc: ChannelError) -> dict[str, Any]:
    """The wire form of a refusal: ``{"error": {"code", "message", ...}}``."""
    error: dict[str, Any] = {"code": exc.code, "message": str(exc)}
    field = getattr(exc, "field", None)
    if field:
        error["field"] = field
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        error["retry_after"] = round(retry_after, 1)
    return {"error": error}


@dataclass(frozen=True, slots=True)
class ConnectAuth:
    site_key: str
    visitor_token: str | None


@dataclass(frozen=True, slots=True)
class VisitorMessage:
    text: str
    client_id: str
    attachments: tuple[Attachment, ...] = ()
    page_url: str | None = None


@dataclass(frozen=True, slots=True)
class OfflineMessage:
    text: str
    client_id: str
    answers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Receipt:
    ids: tuple[str, ...]
    status: MarkStatus


def _object(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise WidgetInputError(f"{what} must be an object")
    return payload


def _string(data: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise WidgetInputError(f"{key} must be a string", field=key)
    return value


def parse_auth(auth: Any) -> ConnectAuth:
    data = _object(auth, "auth")
    site_key = _string(data, "site_key")
    if not site_key or len(site_key) > 128:
        raise WidgetInputError("site_key is missing", code="bad_site_key", field="site_key")
    token = _string(data, "visitor_token", required=False) or None
    if token is not None and not _TOKEN.match(token):
        token = None  # a mangled token starts a new visitor rather than refusing the page
    return ConnectAuth(site_key=site_key, visitor_token=token)


def parse_client_id(data: Mapping[str, Any]) -> str:
    client_id = _string(data, "client_id")
    if client_id is None or not _CLIENT_ID.match(client_id):
        raise WidgetInputError(
            "client_id must be 1-64 characters of A-Z a-z 0-9 _ . : -", field="client_id"
        )
    return client_id


def parse_text(data: Mapping[str, Any], limits: Limits, *, key: str = "text") -> str:
    text = _string(data, key, required=False) or ""
    if len(text) > limits.max_text_chars:
        raise WidgetInputError(
            f"{key} is longer than {limits.max_text_chars} characters",
            code="too_long",
            field=key,
        )
    return text


def parse_message(payload: Any, limits: Limits) -> VisitorMessage:
    data = _object(payload, "message")
    client_id = parse_client_id(data)
    text = parse_text(data, limits)
    files = parse_attachments(data.get("attachments"), limits)
    if not text.strip() and not files:
        raise WidgetInputError("a message needs text or an attachment", field="text")
    page_url = _string(data, "page_url", required=False)
    return VisitorMessage(text, client_id, files, page_url[:500] if page_url else None)


def parse_attachments(raw: Any, limits: Limits) -> tuple[Attachment, ...]:
    """Files arrive as socket.io binary attachments (bytes) or base64 strings."""
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise WidgetInputError("attachments must be a list", field="attachments")
    if len(raw) > limits.max_attachments:
        raise WidgetInputError(
            f"at most {limits.max_attachments} attachments",
            code="too_many_attachments",
            field="attachments",
        )
    return tuple(_attachment(item, limits, f"attachments[{i}]") for i, item in enumerate(raw))


def _attachment(item: Any, limits: Limits, where: str) -> Attachment:
    data = _object(item, where)
    name = _filename(_string(data, "name") or "")
    declared = (_string(data, "type") or "").split(";")[0].strip().lower()
    raw = data.get("data")
    if isinstance(raw, str):
        if len(raw) > limits.max_attachment_bytes * 4 // 3 + 8:
            raise _too_large(limits, where)
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WidgetInputError("data is not valid base64", field=f"{where}.data") from exc
    elif isinstance(raw, bytes | bytearray):
        body = bytes(raw)
    else:
        raise WidgetInputError("data must be binary or base64", field=f"{where}.data")
    if len(body) > limits.max_attachment_bytes:
        raise _too_large(limits, where)
    if not body:
        raise WidgetInputError("the file is empty", field=f"{where}.data")
    if declared not in limits.attachment_types:
        raise WidgetInputError(
            f"files of type {declared[:60]!r} are not accepted",
            code="attachment_type",
            field=f"{where}.type",
        )
    if not content_matches(declared, body):
        raise WidgetInputError(
            f"the file's content is not {declared}", code="attachment_type", field=f"{where}.data"
        )
    return Attachment(filename=name, content_type=declared, data=body)


def _too_large(limits: Limits, where: str) -> WidgetInputError:
    return WidgetInputError(
        f"files are limited to {limits.max_attachment_bytes} bytes",
        code="attachment_too_large",
        field=f"{where}.data",
    )


def _filename(name: str) -> str:
    """Keep the last path part, drop control characters, bound the length."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:120] or "file"


_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}


def content_matches(content_type: str, body: bytes) -> bool:
    """Sniff the bytes so a page cannot pass HTML off as an image (the agent inbox shows files)."""
    if content_type == "image/webp":
        return body[:4] == b"RIFF" and body[8:12] == b"WEBP"
    if content_type == "text/plain":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return "\x00" not in text
    magic = _MAGIC.get(content_type)
    return magic is None or body.startswith(magic)


def parse_form(payload: Any, fields: Sequence[FormField], *, key: str) -> dict[str, str]:
    """Check answers against the configured fields; unknown names are dropped, not stored."""
    data = _object(_object(payload, "payload").get(key), key)
    answers: dict[str, str] = {}
    for spec in fields:
        where = f"{key}.{spec.name}"
        value = data.get(spec.name)
        if value is None or value == "":
            if spec.required:
                raise WidgetInputError(f"{spec.name} is required", code="required", field=where)
            continue
        if not isinstance(value, str):
            raise WidgetInputError(f"{spec.name} must be a string", field=where)
        value = value.strip()
        if len(value) > spec.max_length:
            raise WidgetInputError(f"{spec.name} is too long", code="too_long", field=where)
        if spec.type is FieldType.EMAIL and not _EMAIL.match(value):
            raise WidgetInputError(f"{spec.name} is not an email address", field=where)
        if spec.type is FieldType.TEL and not _TEL.match(value):
            raise WidgetInputError(f"{spec.name} is not a phone number", field=where)
        if spec.type is FieldType.SELECT and value not in spec.options:
            raise WidgetInputError(f"{spec.name} is not one of the options", field=where)
        answers[spec.name] = value
    return answers


def parse_offline(payload: Any, fields: Sequence[FormField], limits: Limits) -> OfflineMessage:
    data = _object(payload, "offline")
    client_id = parse_client_id(data)
    answers = parse_form(data, fields, key="fields")
    text = parse_text(data, limits)
    if not text.strip():
        raise WidgetInputError("the offline message is empty", code="required", field="text")
    return OfflineMessage(text=text, client_id=client_id, answers=answers)


def parse_typing(payload: Any) -> bool:
    value = _object(payload, "typing").get("typing")
    if not isinstance(value, bool):
        raise WidgetInputError("typing must be true or false", field="typing")
    return value


def parse_receipt(payload: Any) -> Receipt:
    data = _object(payload, "receipt")
    ids = data.get("ids")
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= 100
        or not all(isinstance(i, str) and _MESSAGE_ID.match(i) for i in ids)
    ):
        raise WidgetInputError("ids must be a list of 1-100 message ids", field="ids")
    status = data.get("status")
    if status not in (MarkStatus.DELIVERED, MarkStatus.READ):
        raise WidgetInputError("status must be delivered or read", field="status")
    return Receipt(ids=tuple(ids), status=MarkStatus(status))


def parse_history(payload: Any, limits: Limits) -> tuple[str | None, int]:
    data = _object(payload if payload is not None else {}, "history")
    before = _string(data, "before", required=False)
    if before is not None and not _MESSAGE_ID.match(before):
        raise WidgetInputError("before must be a message id", field="before")
    limit = data.get("limit", limits.history_page)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
        raise WidgetInputError("limit must be an integer from 1 to 200", field="limit")
    return before, min(limit, limits.history_page)
