"""Email channel: IMAP receive loop, MIME parsing, SMTP replies (see ``channel.py``)."""

from channels.email.channel import EmailChannel
from channels.email.config import EmailConfig, ImapConfig, SmtpConfig
from channels.email.parse import ParseOptions, parse_email
from channels.email.state import InMemoryMailboxStateStore, MailboxState, MailboxStateStore
from channels.email.tokens import parse_ticket_tokens, render_ticket_token

__all__ = [
    "EmailChannel",
    "EmailConfig",
    "ImapConfig",
    "InMemoryMailboxStateStore",
    "MailboxState",
    "MailboxStateStore",
    "ParseOptions",
    "SmtpConfig",
    "parse_email",
    "parse_ticket_tokens",
    "render_ticket_token",
]
