"""Walking a MIME tree into body text, HTML, attachments and report data.

The structures real clients produce: ``multipart/alternative`` (plain + HTML, sometimes + a
``text/calendar`` invite), ``multipart/related`` (HTML + the ``cid:`` images it shows),
``multipart/mixed`` (body + attachments; Apple Mail interleaves several inline bodies with
images), ``message/rfc822`` (forwarded as attachment), and ``multipart/report`` bounces with
``message/delivery-status``. Every text part goes through :mod:`channels.email.charsets`; every
binary part is counted against the size caps and recorded as *omitted* when it does not fit,
so a 60 MB attachment never sinks the mail it came with.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from email import message_from_string
from email.message import Message
from email.policy import compat32
from typing import Any

from channels.base import Attachment
from channels.email.charsets import decode_bytes, decode_rfc2047
from channels.email.refs import message_ids

MAX_DEPTH = 24


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what is kept from one mail (bytes)."""

    max_attachment_bytes: int = 25 * 1024 * 1024
    max_total_attachment_bytes: int = 50 * 1024 * 1024


@dataclass
class BodyParts:
    """Everything collected from the MIME tree of one mail."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    omitted: list[dict[str, Any]] = field(default_factory=list)
    charset_fallback: bool = False
    dsn: dict[str, str] = field(default_factory=dict)
    original_ids: list[str] = field(default_factory=list)
    calendar: dict[str, str] = field(default_factory=dict)
    tnef: bool = False
    kept_bytes: int = 0
    truncated_depth: bool = False


def _unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed soft line breaks (a line ending in a space continues)."""
    out: list[str] = []
    buf = ""
    for line in text.split("\n"):
        if line == "-- ":
            if buf:
                out.append(buf)
                buf = ""
            out.append(line)
            continue
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" "):
            buf += line[:-1] if delsp else line
        else:
            out.append(buf + line)
            buf = ""
    if buf:
        out.append(buf)
    return "\n".join(out)


def _params(part: Message, header: str = "content-type") -> dict[str, Any]:
    """A header's parameters, lower-cased names, first one wins: what ``get_param`` answers,
    parsed once instead of once per parameter asked (profiled: a fifth of a small mail's
    parse went to re-parsing Content-Type)."""
    out: dict[str, Any] = {}
    for name, value in part.get_params(header=header) or ():
        out.setdefault(name.lower(), value)
    return out


def _text_of(part: Message, acc: BodyParts, ctype: str | None = None,
             params: dict[str, Any] | None = None) -> str:
    params = _params(part) if params is None else params
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text, fallback = decode_bytes(data, params.get("charset"))
    acc.charset_fallback = acc.charset_fallback or fallback
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    ctype = part.get_content_type() if ctype is None else ctype
    if ctype == "text/plain" and str(params.get("format", "")).lower() == "flowed":
        text = _unflow(text, str(params.get("delsp", "")).lower() == "yes")
    return text


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def _filename(part: Message, content_type: str, index: int) -> str:
    try:
        raw = part.get_filename()
    except Exception:  # broken RFC 2231 parameters
        raw = None
    name = decode_rfc2047(raw) if raw else ""
    name = _UNSAFE_NAME.sub("_", name).strip(" .")[:200]
    if not name:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        name = f"part-{index}{ext}"
    return name


def _add_binary(
    part: Message, data: bytes, content_type: str, acc: BodyParts, limits: Limits,
    *, in_related: bool, name: str | None = None,
) -> None:
    index = len(acc.attachments) + len(acc.omitted) + 1
    filename = name or _filename(part, content_type, index)
    cid_raw = part.get("Content-ID")
    content_id = str(cid_raw).strip().strip("<>").strip() or None if cid_raw else None
    too_big = len(data) > limits.max_attachment_bytes
    over_total = acc.kept_bytes + len(data) > limits.max_total_attachment_bytes
    if too_big or over_total:
        acc.omitted.append({
            "filename": filename, "content_type": content_type, "size": len(data),
            "reason": "too_large" if too_big else "total_too_large",
        })
        return
    disposition = part.get_content_disposition()
    inline = content_id is not None and (disposition == "inline" or in_related)
    acc.kept_bytes += len(data)
    acc.attachments.append(Attachment(filename, content_type, data, content_id, inline))


def _delivery_status(part: Message, acc: BodyParts) -> None:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not isinstance(block, Message):
            continue
        for key in ("Action", "Status", "Final-Recipient", "Diagnostic-Code", "Reporting-MTA"):
            value = block.get(key)
            if value is not None and key.lower() not in acc.dsn:
                acc.dsn[key.lower()] = " ".join(str(value).split())[:300]


def _calendar(text: str, acc: BodyParts) -> None:
    for key in ("METHOD", "SUMMARY", "DTSTART", "UID"):
        m = re.search(rf"^{key}[^:\n]*:(.*)$", text, re.MULTILINE)
        if m and key.lower() not in acc.calendar:
            acc.calendar[key.lower()] = m.group(1).strip()[:300]


def walk(part: Message, acc: BodyParts, limits: Limits, *, depth: int = 0,
         in_related: bool = False) -> None:
    """Collect ``part`` and its children into ``acc``."""
    if depth > MAX_DEPTH:
        acc.truncated_depth = True
        return
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/global"):
        _embedded_message(part, acc, limits, in_related=in_related)
        return
    if ctype == "message/delivery-status":
        _delivery_status(part, acc)
        return
    if ctype.startswith("multipart/") and not part.is_multipart():
        part = _reboundary(part)
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            return
        related = ctype == "multipart/related"
        for child in children:
            if isinstance(child, Message):
                walk(child, acc, limits, depth=depth + 1, in_related=in_related or related)
        return
    disposition = part.get_content_disposition()
    params = _params(part)
    has_name = bool(params.get("name") or (
        disposition is not None and _params(part, "content-disposition").get("filename")))
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not has_name:
        (acc.plain if ctype == "text/plain" else acc.html).append(
            _text_of(part, acc, ctype, params))
        return
    if ctype == "text/rfc822-headers":
        found = re.search(r"^Message-ID:\s*(.*)$", _text_of(part, acc, ctype, params),
                          re.I | re.M)
        if found:
            acc.original_ids.extend(message_ids(found.group(1)))
        return
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    if ctype == "text/calendar":
        _calendar(decode_bytes(data, params.get("charset"))[0], acc)
        _add_binary(part, data, ctype, acc, limits, in_related=False,
                    name=None if has_name else "invite.ics")
        return
    if ctype == "application/ms-tnef":
        acc.tnef = True
    _add_binary(part, data, ctype, acc, limits, in_related=in_related)


def _reboundary(part: Message) -> Message:
    """A multipart without a usable boundary: guess it from the first ``--`` line, or treat the
    whole payload as plain text (what a human would read)."""
    body = part.get_payload()
    text = body if isinstance(body, str) else ""
    found = re.search(r"^--([^\s]{1,70}?)\s*$", text, re.MULTILINE)
    if found:
        head = f'Content-Type: {part.get_content_type()}; boundary="{found.group(1)}"\n\n'
        reparsed = message_from_string(head + text, policy=compat32)
        if reparsed.is_multipart():
            return reparsed
    fallback = Message()
    fallback.set_type("text/plain")
    fallback.set_payload(text)
    return fallback


def _embedded_message(part: Message, acc: BodyParts, limits: Limits, *, in_related: bool) -> None:
    inner = part.get_payload()
    inner_msg = inner[0] if isinstance(inner, list) and inner else None
    if isinstance(inner_msg, Message):
        acc.original_ids.extend(message_ids(str(inner_msg.get("Message-ID") or "")))
        try:
            data = inner_msg.as_bytes()
        except Exception:  # a message the generator cannot re-serialize: keep its text form
            data = str(inner_msg).encode("utf-8", "surrogateescape")
        subject = decode_rfc2047(inner_msg.get("Subject"))
        name = (_UNSAFE_NAME.sub("_", subject).strip(" .")[:100] or "message") + ".eml"
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        name = "message.eml"
    _add_binary(part, data, "message/rfc822", acc, limits, in_related=in_related, name=name)
