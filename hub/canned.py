"""Canned-response templates: the placeholder language, its validation and its rendering.

A body is plain text with ``{{name}}`` placeholders (spaces inside the braces are allowed). The
set of names is closed (:data:`PLACEHOLDERS`) so a typo such as ``{{contact.nmae}}`` is refused
when the response is saved (by the API and by ``contacthub apply``) instead of reaching a
customer as literal braces. Rendering never fails: a value the hub does not know (a contact
without a name) renders as an empty string and is reported in ``missing`` so the composer can
point at it; the agent always edits the text before it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PLACEHOLDERS: dict[str, str] = {
    "contact.name": "the contact's name",
    "contact.first_name": "the first word of the contact's name",
    "contact.email": "the contact's email address",
    "contact.phone": "the contact's phone number (E.164)",
    "agent.name": "the replying agent's display name",
    "agent.first_name": "the first word of the agent's name",
    "agent.email": "the replying agent's login email",
    "conversation.id": "the conversation id",
    "conversation.subject": "the conversation's subject",
    "conversation.channel": "the conversation's channel (email, sms, webchat, ...)",
    "queue.name": "the conversation's queue",
}

_PLACEHOLDER_RE = re.compile(r"{{\s*([^{}]*?)\s*}}")
MAX_BODY = 10_000
SHORTCUT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


def check_shortcut(value: str) -> str:
    """A shortcut, lower-cased; ValueError explains the allowed form."""
    value = value.strip().lower()
    if not SHORTCUT_RE.match(value):
        raise ValueError(f"{value!r} is not a shortcut: 1-50 of lower-case letters, digits, '_' "
                         "and '-', starting with a letter or digit (typed after '/')")
    return value


def placeholders_in(body: str) -> list[str]:
    """Every placeholder name used in ``body``, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in _PLACEHOLDER_RE.finditer(body)))


def check_body(body: str) -> str:
    """Return ``body`` if every placeholder is known; else raise ValueError naming the first
    unknown one and listing the known ones (the message is shown to whoever wrote it)."""
    unknown = [name for name in placeholders_in(body) if name not in PLACEHOLDERS]
    if unknown:
        known = ", ".join(sorted(PLACEHOLDERS))
        raise ValueError(f"unknown placeholder {{{{{unknown[0]}}}}} (known: {known})")
    return body


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # placeholders without a value (rendered as "")


def render(body: str, values: Mapping[str, str | None]) -> Rendered:
    """Substitute ``values`` into ``body``; unknown or empty values become "" and are listed."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if not value:
            if name not in missing:
                missing.append(name)
            return ""
        return value

    return Rendered(_PLACEHOLDER_RE.sub(sub, body), tuple(missing))


def first_word(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None
