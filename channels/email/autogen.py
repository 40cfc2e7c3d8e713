"""Recognising mail that no human wrote: auto-replies, bounces (DSN), list and bulk mail.

Such mail is recorded like any other but must never become new work, or two auto-responders
answer each other forever. The signals are the standard ones (RFC 3834 ``Auto-Submitted``,
``Precedence``, the vendor ``X-Autoreply``/``X-Autorespond`` headers, the null envelope sender
``Return-Path: <>``, ``multipart/report`` (RFC 6522), ``List-Id`` (RFC 2919)) plus the
mailer-daemon/postmaster sender that every MTA uses for bounces.
"""

from __future__ import annotations

from collections.abc import Callable


def auto_generated_reasons(
    header: Callable[[str], str | None], content_type: str, sender: str | None
) -> tuple[str, ...]:
    """Return why this mail looks machine-generated (empty when a human wrote it)."""
    reasons: list[str] = []
    auto_submitted = (header("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        reasons.append(f"auto-submitted:{auto_submitted.split(';')[0].strip()}")
    precedence = (header("Precedence") or "").strip().lower()
    if precedence in {"bulk", "list", "junk", "auto_reply"}:
        reasons.append(f"precedence:{precedence}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if header(name) is not None:
            reasons.append(name.lower())
    return_path = header("Return-Path")
    if return_path is not None and return_path.strip().replace(" ", "") in {"<>", ""}:
        reasons.append("null-return-path")
    if content_type == "multipart/report":
        reasons.append("multipart/report")
    if header("List-Id") is not None:
        reasons.append("list-id")
    if sender:
        local = sender.split("@", 1)[0].lower()
        if local in {"mailer-daemon", "postmaster"}:
            reasons.append("mailer-daemon")
    return tuple(dict.fromkeys(reasons))


def auto_kind(reasons: tuple[str, ...]) -> str | None:
    """Classify the reasons: ``bounce``, ``list``, ``bulk`` or ``auto_reply`` (None if human)."""
    if not reasons:
        return None
    if any(r in ("multipart/report", "mailer-daemon", "null-return-path") for r in reasons):
        return "bounce"
    if "list-id" in reasons or "precedence:list" in reasons:
        return "list"
    if any(r in ("precedence:bulk", "precedence:junk") for r in reasons):
        return "bulk"
    if "own-address" in reasons:
        return "own"
    return "auto_reply"
