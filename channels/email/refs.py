"""Thread references: which earlier messages (or our ticket) a new mail belongs to.

``Inbound.thread_refs`` carries, in order of strength: ``In-Reply-To``, ``References`` (newest
first), Outlook's ``Thread-Index`` conversation key, and ticket tokens from the subject. The hub
matches them against stored Message-IDs and conversation ids; the forms are:

- ``<local@domain>``: a Message-ID, angle brackets kept, as in ``Inbound.external_id``;
- ``thread-index:<base64>``: the first 22 bytes of ``Thread-Index`` (Outlook's conversation id,
  identical on every message of one Outlook conversation);
- ``ticket:<conversation id>``: from a ``[#CH-...]`` subject token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from channels.email.tokens import parse_ticket_tokens, ticket_ref

_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")
THREAD_INDEX_PREFIX = "thread-index:"


def message_ids(value: str | None) -> list[str]:
    """All ``<id>`` tokens in a header value, in order; bare ids are accepted as one id."""
    if not value:
        return []
    found = [f"<{m}>" for m in _MSGID_RE.findall(value)]
    if not found:
        bare = value.strip()
        if bare and " " not in bare and "@" in bare and len(bare) <= 500:
            found = [f"<{bare}>"]
    return found


def thread_index_ref(value: str | None) -> str | None:
    """The conversation key of an Outlook ``Thread-Index`` header (None when unreadable)."""
    if not value:
        return None
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22:
        return None
    return THREAD_INDEX_PREFIX + base64.b64encode(raw[:22]).decode("ascii")


def thread_refs(
    in_reply_to: str | None, references: str | None, thread_index: str | None, subject: str | None
) -> tuple[str, ...]:
    """Assemble ``Inbound.thread_refs`` (strongest first, no duplicates)."""
    refs: list[str] = []
    refs.extend(message_ids(in_reply_to))
    refs.extend(reversed(message_ids(references)))
    index = thread_index_ref(thread_index)
    if index:
        refs.append(index)
    refs.extend(ticket_ref(cid) for cid in parse_ticket_tokens(subject))
    return tuple(dict.fromkeys(refs))


def fallback_message_id(raw: bytes) -> str:
    """A stable id for mail without a Message-ID: the same bytes always give the same id."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()
