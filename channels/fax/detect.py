"""Recognising the mails fax gateways send, and reading who faxed, how many pages, and when.

Gateways all say the same things in different places:

- HylaFAX ``faxrcvd``: subject "facsimile received from <TSI>", body lines ``Sender:``,
  ``Pages:``, ``Received: 2026:11:16 10:00:00``, a TIFF or PDF attached;
- T.38/SIP gateways and PBX fax-to-mail scripts (Asterisk, Patton, AudioCodes...): ``X-Fax-*``
  headers (``X-Fax-Sender``/``X-Fax-From``/``X-Fax-Caller-ID``, ``X-Fax-Pages``,
  ``X-Fax-Received``) and a subject like "Fax from 0612345678 (3 pages)";
- hosted fax-to-email services: subjects such as ``eFax message from "+1 555 123 4567" - 2
  page(s)`` or "New Fax Message from (555) 123-4567", details repeated in the body.

So the rules here look in headers first, then the subject, then the body; the document is the
first TIFF or PDF part. Everything is pure: bytes in, :class:`FaxInfo` out.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_to_datetime

from channels.addresses import normalize_phone
from channels.base import Attachment, ParseError
from channels.email.charsets import decode_rfc2047

FAX_DOCUMENT_TYPES = ("image/tiff", "image/tif", "application/pdf")
_SENDER_HEADERS = ("X-Fax-Sender", "X-Fax-From", "X-Fax-Caller-ID", "X-Fax-Number",
                   "X-Fax-Remote-Number", "X-Caller-ID")
_PAGES_HEADERS = ("X-Fax-Pages", "X-Fax-Page-Count")
_TIME_HEADERS = ("X-Fax-Received", "X-Fax-Date")
_CSID_HEADERS = ("X-Fax-CSID", "X-Fax-TSI", "X-Fax-Remote-ID")

# "+1 (415) 555-0199", "0211 1234567", "1-415-555-0199", "+44 (0)20 7946 0958": a parenthesised
# group only near the start, so "0211 1234567 (4 pages)" stops before "(4".
_NUMBER = r"(\+?\d{0,3}[\s.\-]?(?:\(\d{1,5}\)[\s.\-]?)?\d[\d\s.\-/]{3,20}\d)"
_SENDER_TEXT = [  # strongest first: the network's caller id, then what the sender programmed
    re.compile(r"(?im)^\s*(?:callid1?|caller[- ]?id|calling number|from number|absender"
               r"|remote number)\s*[:=]\s*\"?" + _NUMBER),
    re.compile(r"(?im)^\s*(?:sender|fax number|tsi|remote id)\s*[:=]\s*\"?" + _NUMBER),
    re.compile(r"(?i)\b(?:fax(?:\s+message)?|facsimile(?:\s+received)?)\s+(?:from|von|de|da)"
               r"\s+\"?" + _NUMBER),
    re.compile(r"(?i)caller-?id\s*[:=]?\s*" + _NUMBER),
]
_PAGES_TEXT = re.compile(r"(?i)(?:\bpages?\s*[:=]\s*(\d{1,4})\b|\b(\d{1,4})\s*(?:page\(s\)|pages?"
                         r"|seiten|pages?\s+received)\b)")
_HYLAFAX_TIME = re.compile(r"(?im)^\s*received\s*:\s*(\d{4})[:\-/](\d\d)[:\-/](\d\d)[ T]"
                           r"(\d\d):(\d\d):(\d\d)")
_CSID_TEXT = re.compile(r"(?im)^\s*(?:tsi|csid|remote station)\s*[:=]\s*\"?([^\"\r\n]{1,40})")


@dataclass(frozen=True, slots=True)
class FaxInfo:
    """What a gateway mail says about the fax it carries."""

    gateway: str  # hylafax | t38-headers | hosted | unknown
    sender_raw: str | None
    sender_e164: str | None
    pages: int | None
    received_at: datetime | None
    csid: str | None
    document: Attachment | None


def _header(msg: Message, names: Collection[str]) -> str | None:
    for name in names:
        value = msg.get(name)
        if value is not None and str(value).strip():
            return decode_rfc2047(str(value))
    return None


def _body_text(msg: Message) -> str:
    parts: list[str] = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and part.get_content_disposition() != (
            "attachment"
        ):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(parts)


def _document(msg: Message) -> Attachment | None:
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = part.get_filename() or ""
        low = name.lower()
        if ctype in FAX_DOCUMENT_TYPES or low.endswith((".tif", ".tiff", ".pdf")):
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes) or not payload:
                continue
            if ctype not in FAX_DOCUMENT_TYPES:
                ctype = "application/pdf" if low.endswith(".pdf") else "image/tiff"
            ext = ".pdf" if ctype == "application/pdf" else ".tif"
            return Attachment(name or f"fax{ext}", "image/tiff" if ctype == "image/tif" else ctype,
                              payload)
    return None


def _number(raw: str | None, region: str) -> str | None:
    if not raw:
        return None
    try:
        return normalize_phone(re.sub(r"[\s().\-/]", "", raw), region)
    except ParseError:
        return None


def recognise_fax(raw: bytes, *, default_region: str = "US") -> FaxInfo | None:
    """Return what the gateway mail says, or None when this is not a fax-to-email mail."""
    msg = message_from_bytes(raw, policy=compat32)
    document = _document(msg)
    subject = decode_rfc2047(msg.get("Subject"))
    body = _body_text(msg)
    header_sender = _header(msg, _SENDER_HEADERS)
    gateway = "unknown"
    if header_sender or _header(msg, _PAGES_HEADERS):
        gateway = "t38-headers"
    elif re.search(r"(?i)facsimile received|hylafax", subject + "\n" + body):
        gateway = "hylafax"
    elif re.search(r"(?i)fax", subject):  # "Fax", "eFax", "Telefax"
        gateway = "hosted"
    if document is None or (gateway == "unknown" and not re.search(r"(?i)\bfax", body)):
        return None

    sender_raw = header_sender or _sender_from_text(subject, body)
    pages_raw = _header(msg, _PAGES_HEADERS)
    pages: int | None = None
    if pages_raw and pages_raw.strip().isdigit():
        pages = int(pages_raw.strip())
    else:
        found_pages = _PAGES_TEXT.search(subject) or _PAGES_TEXT.search(body)
        if found_pages:
            pages = int(found_pages.group(1) or found_pages.group(2))
    return FaxInfo(
        gateway=gateway,
        sender_raw=sender_raw,
        sender_e164=_number(sender_raw, default_region),
        pages=pages,
        received_at=_received(msg, body),
        csid=_header(msg, _CSID_HEADERS) or _csid(body),
        document=document,
    )


def _sender_from_text(subject: str, body: str) -> str | None:
    for pattern in _SENDER_TEXT:
        for text in (subject, body):
            found = pattern.search(text)
            if found:
                return found.group(1).strip()
    return None


def _csid(body: str) -> str | None:
    found = _CSID_TEXT.search(body)
    return found.group(1).strip() if found else None


def _received(msg: Message, body: str) -> datetime | None:
    header = _header(msg, _TIME_HEADERS)
    if header:
        try:
            value = datetime.fromisoformat(header.strip())
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        except ValueError:
            try:
                return parsedate_to_datetime(header)
            except (TypeError, ValueError, IndexError):
                pass
    found = _HYLAFAX_TIME.search(body)
    if found:
        try:
            y, mo, d, h, mi, s = (int(g) for g in found.groups())
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
        except ValueError:
            return None
    return None
