"""Building the MIME message for an agent's reply.

Threading must survive every client: our own Message-ID (derived from the outbox item's
idempotency key, so a retried send carries the same id and the recipient's client dedupes it),
``In-Reply-To`` the message answered, ``References`` the chain (capped, first + newest, as RFC
5322 suggests), and the ticket token in the subject for clients that drop all of that.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from channels.base import AddressKind, Outbound, PermanentChannelError
from channels.email.refs import message_ids
from channels.email.tokens import subject_with_token

MAX_REFERENCES = 20


def our_message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID of a reply: stable across retries of the same outbox item."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<ch.{digest}@{domain}>"


def from_header(address: str, author_name: str | None, display_name: str | None) -> str:
    """``"Ana (Support)" <support@...>``: the agent's name, the team's address."""
    if author_name and display_name:
        name = f"{author_name} ({display_name})"
    else:
        name = author_name or display_name or ""
    return formataddr((name, address))


def _references(outbound: Outbound) -> list[str]:
    chain: list[str] = []
    for ref in (*outbound.references, outbound.in_reply_to or ""):
        chain.extend(message_ids(ref) if ref.startswith("<") else [])
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def compose_reply(
    outbound: Outbound, *, address: str, display_name: str | None, domain: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The message to send for ``outbound``; raises PermanentChannelError on a non-email target."""
    if outbound.to.kind is not AddressKind.EMAIL:
        raise PermanentChannelError("email reply to a non-email address", code="bad_address")
    msg = EmailMessage()
    msg["From"] = from_header(address, outbound.author_name, display_name)
    msg["To"] = outbound.to.value
    cc = outbound.metadata.get("cc") or ()
    if cc:
        msg["Cc"] = ", ".join(str(a) for a in cc)
    try:
        subject = subject_with_token(outbound.subject, outbound.conversation_id,
                                     reply=outbound.in_reply_to is not None)
    except ValueError:  # a conversation id the token cannot carry: send without the token
        subject = outbound.subject or ""
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = our_message_id(outbound.idempotency_key, domain)
    parent = message_ids(outbound.in_reply_to) if outbound.in_reply_to else []
    if parent and outbound.in_reply_to and outbound.in_reply_to.startswith("<"):
        msg["In-Reply-To"] = parent[0]
    refs = _references(outbound)
    if refs:
        msg["References"] = " ".join(refs)
    msg.set_content(outbound.text or "")
    if outbound.html:
        msg.add_alternative(outbound.html, subtype="html")
        html_part = msg.get_body(preferencelist=("html",))
        for att in outbound.attachments:
            if html_part is not None and att.inline and att.content_id:
                maintype, _, subtype = att.content_type.partition("/")
                html_part.add_related(
                    att.data, maintype=maintype, subtype=subtype or "octet-stream",
                    cid=f"<{att.content_id}>", filename=att.filename,
                )
    for att in outbound.attachments:
        if att.inline and att.content_id and outbound.html:
            continue
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(att.data, maintype=maintype or "application",
                           subtype=subtype or "octet-stream", filename=att.filename)
    return msg


def recipients_of(msg: EmailMessage) -> list[str]:
    """Envelope recipients: To and Cc."""
    out: list[str] = []
    for name in ("To", "Cc"):
        value = msg.get(name)
        if value:
            out.extend(a.strip() for a in str(value).split(",") if a.strip())
    return out
