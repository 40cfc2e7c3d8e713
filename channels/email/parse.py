"""``parse_email``: raw RFC 5322 bytes → :class:`channels.base.Inbound`, pure and total.

Pure (no I/O, no clock unless no date is known) so it can be tested on a corpus and fuzzed. Total:
any input either yields an ``Inbound`` or raises :class:`ParseError` naming the field that made
it impossible (only a missing/invalid sender or an absurd size does); everything else degrades
(unknown charset → fallback decoding, broken base64 → what decodes, oversize attachment →
recorded as omitted) and is flagged in ``metadata`` so nothing is silently lost.

``text`` is the *new* text of the mail (quoted history and signature are in
``metadata["quoted_text"]`` / ``metadata["signature"]``); ``html`` is sanitized HTML with the
signature and quoted history folded into ``<details>`` (see :mod:`channels.email.display`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from channels.addresses import normalize_email
from channels.base import Address, AddressKind, ChannelKind, Inbound, ParseError
from channels.email.autogen import auto_generated_reasons, auto_kind
from channels.email.body import BodyParts, Limits, walk
from channels.email.charsets import decode_rfc2047, raw_header_text
from channels.email.display import display_parts
from channels.email.refs import fallback_message_id, message_ids, thread_refs

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Per-mailbox parsing choices."""

    limits: Limits = field(default_factory=Limits)
    allow_remote_images: bool = False
    our_addresses: Collection[str] = ()  # lower-cased; picks ``Inbound.recipient``
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_body_chars: int = 1_000_000  # text and HTML each; the rest is in the raw mail on IMAP


class _Headers:
    """Raw header access without compat32's ``Header`` objects or surrogate escapes."""

    def __init__(self, msg: Message) -> None:
        self._items: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            self._items.setdefault(name.lower(), []).append(raw_header_text(str(value)))

    def get(self, name: str) -> str | None:
        values = self._items.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return self._items.get(name.lower(), [])


# One mailbox in the two everyday forms: `Name <a@b>` / `"Name" <a@b>`, or a bare `a@b`. Anything
# else (lists, comments, groups, quoted commas) goes through the stdlib's full RFC 5322 parser.
_SIMPLE_ADDR = re.compile(
    r'^\s*(?:"([^"\\,]*)"|([^"<>,;:()@\\]*?))\s*<([^<>\s,;"()]+@[^<>\s,;"()]+)>\s*$'
    r'|^\s*<?([^<>\s,;"()]+@[^<>\s,;"()]+)>?\s*$'
)


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, normalized address) pairs; unparseable entries are skipped."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        simple = _SIMPLE_ADDR.match(value)
        if simple:
            pairs.append((simple.group(1) or simple.group(2) or "",
                          simple.group(3) or simple.group(4)))
        else:
            pairs.extend(getaddresses([value]))
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        try:
            out.append((decode_rfc2047(name).strip().strip('"').strip(), normalize_email(addr)))
        except ParseError:
            continue
    return out


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_email(
    raw: bytes,
    *,
    channel_id: str,
    channel: ChannelKind = ChannelKind.EMAIL,
    options: ParseOptions | None = None,
    received_at: datetime | None = None,
) -> Inbound:
    """Parse one mail. Raises only :class:`ParseError` (``field`` says why)."""
    opts = options or ParseOptions()
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise ParseError("empty message", field="message")
    if len(raw) > opts.max_message_bytes:
        raise ParseError(f"message of {len(raw)} bytes exceeds the limit", field="size")
    try:
        return _parse(bytes(raw), channel_id, channel, opts, received_at)
    except ParseError:
        raise
    except Exception as exc:  # the email package on adversarial input: report, never crash
        log.warning("unparseable mail on %s: %s", channel_id, type(exc).__name__)
        reason = f"unparseable MIME structure ({type(exc).__name__})"
        raise ParseError(reason, field="mime") from exc


# A header field's first line as the stdlib's feed parser takes it: a name of printable ASCII
# without ':', then ':' (its "From " envelope line and malformed lines are left to it).
_FIELD_LINE = re.compile(r"[\x21-\x39\x3b-\x7e]+:")


def _simple_message(text: str) -> Message | None:
    """The ``Message`` the stdlib's parser builds for a plain single-part mail, built directly;
    None for anything else (multipart, message/*, odd line ends, 8-bit or malformed headers).

    Why: for the everyday small mail the feed parser (a generator per line, a regex per line,
    line buffering) was a quarter of the parse, which is what a mailbox backlog waits for.
    The shape accepted here is the one where that parser's outcome is plain: CRLF header lines,
    each a field or a continuation, ended by an empty line; then the headers are stored with
    the policy's own ``header_source_parse`` and the rest of the text is the payload, as it does
    (tests compare both on a corpus).
    """
    end = text.find("\r\n\r\n")
    head = text[:end]
    if end <= 0 or not head.isascii():
        return None
    lines = head.split("\r\n")
    msg = Message(policy=compat32)
    field: list[str] = []
    for line in lines:
        if "\r" in line or "\n" in line:
            return None  # a bare CR or LF: the parser's line splitting differs
        if line[:1] in (" ", "\t"):
            if not field:
                return None  # a continuation first: a defect the parser records
            field.append(line + "\r\n")
            continue
        if _FIELD_LINE.match(line) is None:
            return None
        if field:
            msg.set_raw(*compat32.header_source_parse(field))
        field = [line + "\r\n"]
    if field:
        msg.set_raw(*compat32.header_source_parse(field))
    if msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(text[end + 4 :])
    return msg


def message_from_raw(raw: bytes) -> Message:
    """``email.message_from_bytes(raw, policy=compat32)``, faster for a plain single-part mail."""
    text = raw.decode("ascii", "surrogateescape")
    simple = _simple_message(text)
    return simple if simple is not None else Parser(policy=compat32).parsestr(text)


def _parse(
    raw: bytes, channel_id: str, channel: ChannelKind, opts: ParseOptions,
    received_at: datetime | None,
) -> Inbound:
    msg = message_from_raw(raw)
    headers = _Headers(msg)
    senders = _addresses(headers.all("From")) or _addresses(headers.all("Sender"))
    if not senders:
        raise ParseError("no valid From address", field="from")
    sender_name, sender = senders[0]
    subject = decode_rfc2047(headers.get("Subject")) or None
    to = _addresses(headers.all("To"))
    cc = _addresses(headers.all("Cc"))
    delivered = _addresses(headers.all("Delivered-To") + headers.all("X-Original-To"))
    ours = {a.lower() for a in opts.our_addresses}
    candidates = [a for _, a in delivered + to + cc]
    recipient = next((a for a in candidates if a in ours), candidates[0] if candidates else None)

    acc = BodyParts()
    walk(msg, acc, opts.limits)
    truncated = False
    html_raw = "\n".join(acc.html).strip()
    if len(html_raw) > opts.max_body_chars:
        html_raw, truncated = html_raw[: opts.max_body_chars], True
    plain = "\n\n".join(p.strip("\n") for p in acc.plain).strip()
    if len(plain) > opts.max_body_chars:
        plain, truncated = plain[: opts.max_body_chars], True
    html_only = not plain and bool(html_raw)
    shown = display_parts(html_raw, plain, subject, allow_remote_images=opts.allow_remote_images)
    html, blocked, split = shown.html, shown.blocked_remote, shown.text

    found_ids = message_ids(headers.get("Message-ID"))
    message_id = found_ids[0] if found_ids else None
    refs = list(thread_refs(headers.get("In-Reply-To"), headers.get("References"),
                            headers.get("Thread-Index"), subject))
    top_type = msg.get_content_type()
    if top_type == "multipart/report":
        # A bounce joins the thread of the message that bounced.
        refs.extend(r for r in acc.original_ids if r not in refs and r != message_id)
    reasons = auto_generated_reasons(headers.get, top_type, sender)
    if sender in ours:
        # Our own address writing to our own mailbox (a Cc/Bcc of a reply, a forwarding rule):
        # recorded, never new work, or every reply would open a case.
        reasons = (*reasons, "own-address")
    date_header = _date(headers.get("Date"))

    metadata: dict[str, Any] = {
        "message_id": message_id,
        "to": [a for _, a in to],
        "cc": [a for _, a in cc],
        "reply_to": [a for _, a in _addresses(headers.all("Reply-To"))],
        "quoted_text": split.quoted,
        "signature": split.signature,
        "forwarded": split.forwarded,
        "quote_marker": shown.marker,
        "html_only": html_only,
        "charset_fallback": acc.charset_fallback,
        "blocked_remote_images": blocked,
        "omitted_attachments": acc.omitted,
        "auto_reasons": list(reasons),
        "auto_kind": auto_kind(reasons),
        "defects": sorted({type(d).__name__ for p in msg.walk() for d in p.defects}),
    }
    if date_header is not None:
        metadata["date_header"] = date_header.isoformat()
    if acc.dsn:
        metadata["dsn"] = acc.dsn
    if acc.calendar:
        metadata["calendar"] = acc.calendar
    if acc.tnef:
        metadata["tnef"] = True
    if acc.truncated_depth:
        metadata["truncated_depth"] = True
    if truncated:
        metadata["body_truncated"] = True
    if acc.omitted or acc.charset_fallback:
        log.info("mail on %s parsed with fallbacks: %d attachment(s) omitted, charset=%s",
                 channel_id, len(acc.omitted), acc.charset_fallback)

    return Inbound(
        channel=channel,
        channel_id=channel_id,
        external_id=message_id or fallback_message_id(raw),
        sender=Address(AddressKind.EMAIL, sender),
        sender_name=sender_name or None,
        text=split.new,
        recipient=recipient,
        subject=subject,
        html=html or None,
        attachments=tuple(acc.attachments),
        thread_refs=tuple(refs),
        received_at=received_at or date_header or datetime.now(UTC),
        auto_generated=bool(reasons),
        metadata=metadata,
    )
