"""Settings of one email (or fax-to-email) mailbox, built by the hub from its own settings.

Only the hub reads the environment; these are plain frozen values passed in.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

from channels.email.oauth import OAuth2Config
from channels.email.parse import ParseOptions

Security = Literal["tls", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class ImapConfig:
    """How to read one mailbox.

    ``security``: ``tls`` (implicit TLS, port 993), ``starttls`` (port 143, upgraded before
    login) or ``none``; the server certificate is verified against the system roots, or only
    ``ca_file`` when set (``ssl_context``, for tests, overrides both). Credentials never cross
    an unencrypted connection unless ``allow_plaintext_auth`` says so. ``after_ingest``: flag
    ``\\Seen`` or move to ``processed_folder`` once the hub committed the message. Mail that
    cannot be parsed is moved to ``quarantine_folder`` (or, when that is None, left unseen and
    flagged ``$ParseFailed``).
    """

    host: str
    username: str
    password: str = field(repr=False)
    port: int = 993
    security: Security = "tls"
    ssl_context: ssl.SSLContext | None = None
    ca_file: str | None = None
    allow_plaintext_auth: bool = False
    oauth2: OAuth2Config | None = None  # XOAUTH2 with refreshed tokens instead of the password
    mailbox: str = "INBOX"
    after_ingest: Literal["seen", "move"] = "seen"
    processed_folder: str = "Processed"
    quarantine_folder: str | None = "Quarantine"
    initial_sync: Literal["unseen", "all"] = "unseen"
    batch_size: int = 200  # messages per fetch...
    batch_bytes: int = 64 * 1024 * 1024  # ...and at most this many bytes (one big mail alone)
    max_fetch_bytes: int = 100 * 1024 * 1024  # bigger mail: headers only, flagged in metadata
    use_idle: bool = True
    idle_max_s: float = 300.0  # re-issue IDLE at least this often (RFC 2177 says < 29 min)
    poll_interval_s: float = 60.0  # without IDLE
    timeout_s: float = 30.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to send replies. ``security``: ``starttls`` (587), ``tls`` (465) or ``none``."""

    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "starttls"
    ssl_context: ssl.SSLContext | None = None
    ca_file: str | None = None  # verify the server against this CA only (default: system)
    allow_plaintext_auth: bool = False  # AUTH over security "none" must be asked for
    oauth2: OAuth2Config | None = None  # XOAUTH2 (with ``username``) instead of the password
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """One support address: where it is read, how replies leave, and how mail is parsed.

    ``sent_folder``: when set, a copy of every reply is appended there over IMAP.
    ``message_id_domain``: the right-hand side of our Message-IDs (defaults to the address's).
    """

    channel_id: str
    address: str
    imap: ImapConfig
    smtp: SmtpConfig | None = None
    display_name: str | None = None  # "Support"; replies go out as "Agent Name (Support)"
    sent_folder: str | None = None
    message_id_domain: str | None = None
    parse: ParseOptions = field(default_factory=ParseOptions)
    parse_workers: int | None = None  # processes for backlog parsing; None: cores - 1, 0: none
