"""Pure parsers for what Kannel's smsbox sends us: MO messages (get-url) and DLRs (dlr-url).

The get-url the hub configures in Kannel (see ``KANNEL_GET_URL_TEMPLATE``) carries
``from=%p&to=%P&text=%b&id=%I&smsc=%i&ts=%T&coding=%c&charset=%C&udh=%u``. ``%b`` is the message
as-is (URL-encoded bytes), so the parser works on the *raw* query string: a UCS-2 message
arrives as UTF-16BE bytes and must not be decoded as UTF-8 by a web framework first.

``external_id`` is ``kannel:<%I>``: Kannel keeps a message's UUID when it retries the HTTP
request or re-delivers after a restart, so retries dedupe in the hub. Without ``id`` a hash of
the message's own fields is used (stable for identical retries).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from channels.addresses import normalize_phone
from channels.base import Address, AddressKind, ChannelKind, Inbound, ParseError
from channels.sms.models import ConcatInfo, DeliveryReport, DeliveryStatus

log = logging.getLogger(__name__)

KANNEL_GET_URL_TEMPLATE = (
    "{base}?from=%p&to=%P&text=%b&id=%I&smsc=%i&ts=%T&coding=%c&charset=%C&udh=%u"
)
KANNEL_DLR_QUERY_TEMPLATE = "status=%d&answer=%A&to=%p&ts=%T&smscid=%F"

# Kannel's %d DLR type bits.
_DLR_STATUS = {
    1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.FAILED,
    4: DeliveryStatus.QUEUED,
    8: DeliveryStatus.SENT,
    16: DeliveryStatus.FAILED,
}
_MAX_TEXT_BYTES = 64 * 1024


def parse_query(raw: bytes | str) -> dict[str, bytes]:
    """Split a URL-encoded query/form into name -> raw bytes (first occurrence wins)."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    out: dict[str, bytes] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="latin-1"):
        out.setdefault(name, value.encode("latin-1"))
    return out


def _text_field(params: Mapping[str, bytes], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return value.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ParseError(f"{name} is not UTF-8", field=name) from exc


def _int_field(params: Mapping[str, bytes], name: str) -> int | None:
    value = _text_field(params, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ParseError(f"{name} must be an integer, got {value[:20]!r}", field=name) from exc


def parse_timestamp(value: str | None, now: datetime | None = None, *, field: str) -> datetime:
    """Kannel ``%T`` (unix seconds) or ``%t`` (``YYYY-MM-DD HH:MM[:SS]``, UTC)."""
    if not value:
        return now or datetime.now(UTC)
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ParseError(f"unrecognised timestamp {value[:30]!r}", field=field)


def parse_udh(udh: bytes) -> ConcatInfo | None:
    """Find a concatenation IE (0x00: 8-bit ref, 0x08: 16-bit ref) in a User Data Header.

    ``udh`` starts with its length byte (UDHL) as Kannel passes it. Other IEs (ports, etc.) are
    skipped. Raises :class:`ParseError` (field ``udh``) for a truncated or inconsistent header.
    """
    if not udh:
        return None
    length = udh[0]
    if length + 1 > len(udh):
        raise ParseError("UDH shorter than its declared length", field="udh")
    pos, end = 1, 1 + length
    while pos + 2 <= end:
        iei, ie_len = udh[pos], udh[pos + 1]
        body = udh[pos + 2 : pos + 2 + ie_len]
        if len(body) != ie_len:
            raise ParseError("UDH information element overruns the header", field="udh")
        if iei == 0x00 and ie_len == 3:
            info = ConcatInfo(ref=body[0], total=body[1], seq=body[2], ref_bits=8)
        elif iei == 0x08 and ie_len == 4:
            info = ConcatInfo(ref=(body[0] << 8) | body[1], total=body[2], seq=body[3], ref_bits=16)
        else:
            pos += 2 + ie_len
            continue
        if info.total == 0 or not 1 <= info.seq <= info.total:
            raise ParseError(f"concatenation part {info.seq} of {info.total}", field="udh")
        return info
    return None


def decode_text(data: bytes, coding: int | None, charset: str | None) -> tuple[str, bool]:
    """Decode the message bytes; return (text, had_errors).

    UCS-2 (coding 2) is UTF-16BE with ``surrogatepass`` so an emoji split across two concatenated
    parts survives until the parts are joined. Undecodable bytes are replaced, not fatal: the
    customer's message is kept and flagged rather than refused.
    """
    declared = (charset or "").strip().lower()
    if coding == 2:
        name = "utf-16-be"
    elif declared in {"", "8-bit", "8bit", "binary"}:
        # Kannel says "8-BIT" for data it did not recode: UTF-8 if it is, else byte-for-byte.
        try:
            return data.decode("utf-8"), False
        except UnicodeDecodeError:
            return data.decode("latin-1"), False
    else:
        name = declared
        if name in {"ucs-2", "ucs2", "utf-16be", "utf-16"}:
            name = "utf-16-be"
    try:
        codecs.lookup(name)
    except LookupError:
        log.warning("kannel: unknown charset %r, decoding as UTF-8", name[:20])
        name = "utf-8"
    errors = "surrogatepass" if name.startswith("utf-16") else "strict"
    try:
        return data.decode(name, errors), False
    except UnicodeDecodeError:
        return data.decode(name, "replace"), True


def _sender(raw: str | None, default_region: str, field: str) -> str:
    if not raw:
        raise ParseError(f"{field} is missing", field=field)
    try:
        return normalize_phone(raw, default_region)
    except ParseError as exc:
        raise ParseError(f"{field} is not a phone number", field=field) from exc


def _recipient(raw: str | None, default_region: str) -> str | None:
    if not raw:
        return None
    try:
        return normalize_phone(raw, default_region)
    except ParseError:
        return raw  # a short code ("12345") is a valid recipient but no E.164 number


def parse_kannel_inbound(
    raw_query: bytes | str,
    *,
    channel_id: str,
    default_region: str = "US",
    now: datetime | None = None,
) -> Inbound:
    """Turn one smsbox get-url request into an :class:`Inbound`.

    A part of a concatenated message carries ``metadata["concat"]`` (ref, total, seq, ref_bits);
    the channel joins the parts before the hub sees them.
    """
    params = parse_query(raw_query)
    sender = _sender(_text_field(params, "from"), default_region, "from")
    recipient = _recipient(_text_field(params, "to"), default_region)
    coding = _int_field(params, "coding")
    if coding is not None and coding not in (0, 1, 2):
        raise ParseError(f"coding must be 0, 1 or 2, got {coding}", field="coding")
    data = params.get("text", b"")
    if len(data) > _MAX_TEXT_BYTES:
        raise ParseError("text is too long", field="text")
    text, decode_errors = decode_text(data, coding, _text_field(params, "charset"))
    concat = parse_udh(params.get("udh", b""))
    received_at = parse_timestamp(_text_field(params, "ts"), now, field="ts")
    kannel_id = _text_field(params, "id") or ""
    if kannel_id:
        external_id = f"kannel:{kannel_id}"
    else:
        digest = hashlib.sha256()
        for name in ("from", "to", "ts", "udh", "text", "smsc"):
            digest.update(name.encode() + b"=" + params.get(name, b"") + b"\x00")
        external_id = f"kannel:h:{digest.hexdigest()[:32]}"
    metadata: dict[str, object] = {"provider": "kannel", "coding": coding}
    smsc = _text_field(params, "smsc")
    if smsc:
        metadata["smsc"] = smsc
    if decode_errors:
        metadata["decode_errors"] = True
        log.warning("kannel: message %s had undecodable bytes (kept, replaced)", external_id)
    if concat is not None:
        metadata["concat"] = {
            "ref": concat.ref, "total": concat.total, "seq": concat.seq,
            "ref_bits": concat.ref_bits,
        }  # fmt: skip
    return Inbound(
        channel=ChannelKind.SMS,
        channel_id=channel_id,
        external_id=external_id,
        sender=Address(AddressKind.PHONE, sender),
        recipient=recipient,
        text=text,
        received_at=received_at,
        metadata=metadata,
    )


def parse_kannel_dlr(
    raw_query: bytes | str, *, default_region: str = "US", now: datetime | None = None
) -> DeliveryReport:
    """Turn one dlr-url request into a :class:`DeliveryReport`.

    ``mid`` is our own message id, put in the dlr-url by ``send()``; ``status`` is Kannel's
    ``%d``. Kannel may OR bits together in theory; the most final one wins
    (delivered/failed over sent over queued).
    """
    params = parse_query(raw_query)
    mid = _text_field(params, "mid")
    if not mid:
        raise ParseError("mid is missing", field="mid")
    code = _int_field(params, "status")
    if code is None:
        raise ParseError("status is missing", field="status")
    status = None
    for bit in (1, 2, 16, 8, 4):
        if code & bit:
            status = _DLR_STATUS[bit]
            break
    if status is None:
        raise ParseError(f"unknown DLR status {code}", field="status")
    answer = params.get("answer", b"").decode("utf-8", "replace").strip() or None
    return DeliveryReport(
        provider="kannel",
        message_id=mid,
        status=status,
        raw_status=str(code),
        received_at=parse_timestamp(_text_field(params, "ts"), now, field="ts"),
        recipient=_recipient(_text_field(params, "to"), default_region),
        detail=answer[:200] if answer else None,
    )


__all__ = [
    "KANNEL_DLR_QUERY_TEMPLATE",
    "KANNEL_GET_URL_TEMPLATE",
    "decode_text",
    "parse_kannel_dlr",
    "parse_kannel_inbound",
    "parse_query",
    "parse_timestamp",
    "parse_udh",
]
