"""The ticket token we put in outgoing subjects, e.g. ``[#CH-42]``.

Some clients drop In-Reply-To/References (webmail forwards, people who start a fresh mail and
paste the subject), so the subject carries the conversation id too. The format lives here only:
:func:`render_ticket_token` writes it, :func:`parse_ticket_tokens` finds it.
"""

from __future__ import annotations

import re

TOKEN_PREFIX = "CH"  # noqa: S105 - a subject marker, not a secret
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN_RE = re.compile(r"\[#" + TOKEN_PREFIX + r"-([A-Za-z0-9_-]{1,64})\]")
_REPLY_PREFIX_RE = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|r|tr|rif|res)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
TICKET_REF_PREFIX = "ticket:"


def render_ticket_token(conversation_id: str) -> str:
    """Return the subject token for ``conversation_id``; reject ids the parser could not read."""
    if not _ID_RE.match(conversation_id):
        raise ValueError(f"conversation id not usable in a ticket token: {conversation_id!r}")
    return f"[#{TOKEN_PREFIX}-{conversation_id}]"


def parse_ticket_tokens(subject: str | None) -> tuple[str, ...]:
    """Return the conversation ids found in ``subject`` (in order, without duplicates)."""
    if not subject:
        return ()
    return tuple(dict.fromkeys(_TOKEN_RE.findall(subject)))


def ticket_ref(conversation_id: str) -> str:
    """The thread reference form of a ticket token, as it appears in ``Inbound.thread_refs``."""
    return f"{TICKET_REF_PREFIX}{conversation_id}"


def strip_reply_prefixes(subject: str) -> str:
    """Drop ``Re:``/``Fwd:``/``AW:``... prefixes, as clients in many languages add them."""
    return _REPLY_PREFIX_RE.sub("", subject).strip()


def subject_with_token(subject: str | None, conversation_id: str, *, reply: bool = True) -> str:
    """Subject for an outgoing reply: one ``Re:``, then the text, then our token exactly once."""
    token = render_ticket_token(conversation_id)
    base = strip_reply_prefixes(subject or "")
    base = _TOKEN_RE.sub("", base).strip()
    text = f"{base} {token}".strip() if base else token
    return f"Re: {text}" if reply and base else text
