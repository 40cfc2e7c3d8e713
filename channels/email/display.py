"""What the agent sees of a mail: the new part first, signature and quoted history collapsed.

Combines the HTML split (:mod:`channels.email.htmlquotes`, on the raw HTML, since the marks are
classes the sanitizer removes), the sanitizer, and the plain-text split
(:mod:`channels.email.quotes`). The displayed HTML keeps everything the customer sent, with the
signature and the history inside ``<details>`` elements: they fold and unfold in the inbox's
script-less sandboxed frame without any code, and a reader without ``<details>`` support simply
shows them open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from channels.email.htmlquotes import split_html_quotes
from channels.email.htmlsafe import html_to_text, sanitize_html
from channels.email.quotes import SplitText, split_quotes

_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|wg|tr|rv|i|doorst)\s*:", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Display:
    html: str  # sanitized; "" when the mail has no HTML part
    blocked_remote: int
    text: SplitText
    marker: str  # the client whose HTML quote/signature mark was used ("" if none)


def _fold(summary: str, inner: str, kind: str) -> str:
    if not inner:
        return ""
    return f'<details class="ch-{kind}"><summary>{summary}</summary>{inner}</details>'


def _merge(new_text: str, quoted: str, signature: str, forwarded: bool) -> SplitText:
    """The HTML split's parts as text, refined by the plain-text rules on the new part."""
    inner = split_quotes(new_text)
    forwarded = forwarded or inner.forwarded or split_quotes(quoted).forwarded
    history = "\n\n".join(p for p in (inner.quoted, quoted) if p)
    return SplitText(inner.new, history, signature or inner.signature, forwarded)


def display_parts(
    html_raw: str, plain: str, subject: str | None, *, allow_remote_images: bool
) -> Display:
    """Split and sanitize one mail's bodies; ``plain`` is "" for an HTML-only mail."""
    if not html_raw:
        return Display("", 0, split_quotes(plain), "")
    split = split_html_quotes(html_raw)
    if not split.marker:
        html, blocked = sanitize_html(html_raw, allow_remote_images=allow_remote_images)
        text = split_quotes(plain or html_to_text(html))
        return Display(html, blocked, text, "")
    new, b1 = sanitize_html(split.new, allow_remote_images=allow_remote_images)
    quoted, b2 = sanitize_html(split.quoted, allow_remote_images=allow_remote_images) if (
        split.quoted
    ) else ("", 0)
    sig, b3 = sanitize_html(split.signature, allow_remote_images=allow_remote_images) if (
        split.signature
    ) else ("", 0)
    if plain:
        text = split_quotes(plain)
    else:
        forwarded = bool(subject and _FORWARD_SUBJECT.match(subject))
        text = _merge(html_to_text(new), html_to_text(quoted), html_to_text(sig), forwarded)
    summary = "Forwarded message" if text.forwarded else "Quoted text"
    html = new + _fold("Signature", sig, "signature") + _fold(summary, quoted, "quoted")
    return Display(html, b1 + b2 + b3, text, split.marker)
