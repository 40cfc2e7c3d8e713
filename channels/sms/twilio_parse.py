"""Pure parsers for Twilio-compatible webhooks: inbound messages and status callbacks.

Twilio posts ``application/x-www-form-urlencoded`` UTF-8 forms. The signature is checked by
the web layer before these run (see :mod:`channels.sms.signature`). ``MessageSid`` is the
idempotency key: Twilio retries with the same sid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from channels.addresses import normalize_phone
from channels.base import Address, AddressKind, ChannelKind, Inbound, ParseError
from channels.sms.models import DeliveryReport, DeliveryStatus, MediaRef

_SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$|^[A-Za-z0-9_-]{6,64}$")
_MAX_MEDIA = 10

_STATUS = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """Decode a form body into ordered (name, value) pairs; the signature needs all of them."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ParseError("form body is not UTF-8", field="body") from exc


def _sid(form: Mapping[str, str]) -> str:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not sid:
        raise ParseError("MessageSid is missing", field="MessageSid")
    if not _SID_RE.match(sid):
        raise ParseError("MessageSid is malformed", field="MessageSid")
    return sid


def _phone(form: Mapping[str, str], name: str, region: str, *, required: bool) -> str | None:
    raw = form.get(name, "").strip()
    if not raw:
        if required:
            raise ParseError(f"{name} is missing", field=name)
        return None
    try:
        return normalize_phone(raw, region)
    except ParseError as exc:
        if required:
            raise ParseError(f"{name} is not a phone number", field=name) from exc
        return raw


def parse_media(form: Mapping[str, str]) -> tuple[MediaRef, ...]:
    """``NumMedia`` items ``MediaUrl{N}`` / ``MediaContentType{N}``."""
    raw = form.get("NumMedia", "0").strip() or "0"
    if not raw.isdigit():
        raise ParseError("NumMedia must be a number", field="NumMedia")
    count = int(raw)
    if count > _MAX_MEDIA:
        raise ParseError(f"NumMedia {count} exceeds {_MAX_MEDIA}", field="NumMedia")
    media = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}", "")
        if not url.startswith(("https://", "http://")):
            raise ParseError(f"MediaUrl{index} is missing or not http(s)", field=f"MediaUrl{index}")
        ctype = form.get(f"MediaContentType{index}", "application/octet-stream")
        media.append(MediaRef(url=url, content_type=ctype or "application/octet-stream"))
    return tuple(media)


def parse_twilio_inbound(
    form: Mapping[str, str],
    *,
    channel_id: str,
    default_region: str = "US",
    now: datetime | None = None,
) -> Inbound:
    """Turn an inbound-message webhook into an :class:`Inbound` (media as ``metadata["media"]``).

    Media bytes are not fetched here (pure function): the channel downloads them into
    attachments; the URLs stay in metadata so nothing is lost if a download fails.
    """
    sid = _sid(form)
    sender = _phone(form, "From", default_region, required=True)
    assert sender is not None
    media = parse_media(form)
    metadata: dict[str, object] = {"provider": "twilio", "message_sid": sid}
    if media:
        metadata["media"] = tuple({"url": m.url, "content_type": m.content_type} for m in media)
    segments = form.get("NumSegments", "").strip()
    if segments.isdigit():
        metadata["segments"] = int(segments)
    return Inbound(
        channel=ChannelKind.SMS,
        channel_id=channel_id,
        external_id=f"twilio:{sid}",
        sender=Address(AddressKind.PHONE, sender),
        recipient=_phone(form, "To", default_region, required=False),
        text=form.get("Body", ""),
        received_at=now or datetime.now(UTC),
        metadata=metadata,
    )


def parse_twilio_status(
    form: Mapping[str, str], *, default_region: str = "US", now: datetime | None = None
) -> DeliveryReport:
    """Turn a status callback (``MessageStatus``) into a :class:`DeliveryReport`."""
    sid = _sid(form)
    raw = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not raw:
        raise ParseError("MessageStatus is missing", field="MessageStatus")
    status = _STATUS.get(raw)
    if status is None:
        raise ParseError(f"unknown MessageStatus {raw[:20]!r}", field="MessageStatus")
    error_code = form.get("ErrorCode", "").strip() or None
    return DeliveryReport(
        provider="twilio",
        message_id=sid,
        status=status,
        raw_status=raw,
        received_at=now or datetime.now(UTC),
        recipient=_phone(form, "To", default_region, required=False),
        detail=form.get("ErrorMessage") or None,
        error_code=error_code,
    )
