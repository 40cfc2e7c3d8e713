"""Separating what the customer just wrote from quoted history and their signature.

Agents read the new text; the quoted history (``> ...`` blocks, "On ... wrote:", Outlook's
"-----Original Message-----" or "From:/Sent:" header block, forwarded-message banners) and the
signature (after ``-- ``, or a mobile "Sent from my ..." line) are kept whole in metadata so the
inbox can collapse them. The split is conservative: when in doubt, text stays in the new part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ATTRIBUTION = re.compile(
    r"^\s*(On\s.{1,200}\swrote:|Le\s.{1,200}\sa\s+écrit\s*:|Am\s.{1,200}\sschrieb.{0,100}:"
    r"|El\s.{1,200}\sescribió:|Il\s.{1,200}\sha\s+scritto:|Op\s.{1,200}\sschreef.{0,100}:"
    r"|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}.{0,120}<[^>]+@[^>]+>.{0,20}:)\s*$",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(
    r"^\s*(-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Messaggio originale)\s*-{2,}|_{20,}|-{5,}\s*Forwarded message\s*-{5,}"
    r"|Begin forwarded message:|-{3,}\s*Weitergeleitete Nachricht\s*-{3,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De|Da)\*?\s*:\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(Sent|Date|Gesendet|Envoyé|Enviado|Inviato|To|An|À|Para|A|Subject|Betreff|Objet)\*?\s*:",
    re.IGNORECASE,
)
_MOBILE_SIG = re.compile(
    r"^\s*(Sent from my \w+|Sent from (Outlook|Mail) for \w+|Get Outlook for \w+"
    r"|Von meinem \w+ gesendet|Envoyé de mon \w+)\b.*$",
    re.IGNORECASE,
)
_SIG_DELIM = re.compile(r"^-- ?$")


@dataclass(frozen=True, slots=True)
class SplitText:
    """The new text, the quoted history (with its attribution line) and the signature."""

    new: str
    quoted: str
    signature: str
    forwarded: bool


def _quote_start(lines: list[str]) -> tuple[int | None, bool]:
    """Index of the first line of quoted history and whether it is a forward banner."""
    for i, line in enumerate(lines):
        if _SEPARATORS.match(line):
            low = line.lower()
            return i, "forward" in low or "weitergeleitet" in low
        if _ATTRIBUTION.match(line):
            return i, False
        # Gmail wraps long attributions over two lines.
        if i + 1 < len(lines) and line.strip().startswith("On ") and lines[i + 1].rstrip().endswith(
            "wrote:"
        ):
            return i, False
        if _OUTLOOK_FROM.match(line):
            follow = [ln for ln in lines[i + 1 : i + 5] if ln.strip()]
            if len([ln for ln in follow if _OUTLOOK_NEXT.match(ln)]) >= 2:
                return i, False
        if line.startswith(">"):
            rest = lines[i:]
            quoted = [ln for ln in rest if ln.strip()]
            # A trailing block that is mostly quoted: interleaved replies stay in the new text.
            if quoted and sum(1 for ln in quoted if ln.startswith(">")) >= 0.8 * len(quoted):
                return i, False
    return None, False


def _signature_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if _SIG_DELIM.match(line) or _MOBILE_SIG.match(line):
            return i
    return None


def split_quotes(text: str) -> SplitText:
    """Split plain ``text`` into new text, quoted history and signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    quote_at, forwarded = _quote_start(lines)
    head = lines if quote_at is None else lines[:quote_at]
    quoted = "" if quote_at is None else "\n".join(lines[quote_at:]).strip()
    sig_at = _signature_start(head)
    signature = "" if sig_at is None else "\n".join(head[sig_at:]).strip()
    new_lines = head if sig_at is None else head[:sig_at]
    new = "\n".join(new_lines).strip()
    if not new:
        # Nothing new (a bare forward, a mail that is all quote): never show an empty message.
        return SplitText(text.strip(), "", "", forwarded)
    return SplitText(new, quoted, signature, forwarded)
