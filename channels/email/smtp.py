"""Sending over SMTP (aiosmtplib) with failures sorted into retry / dead-letter.

The mapping follows the SMTP reply classes (RFC 5321 §4.2.1): 4xx is a transient condition
(greylisting, mailbox busy, quota), 5xx is permanent (no such user, rejected content, auth
refused). Anything on the connection level (refused, reset, timeout, TLS handshake) is
transient: the outbox retries it later.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from channels.base import ChannelError, PermanentChannelError, TransientChannelError
from channels.email.config import SmtpConfig
from channels.email.imap_wire import tls_context
from channels.email.oauth import token_source

log = logging.getLogger(__name__)


def _by_code(code: int, message: str, what: str) -> ChannelError:
    if 400 <= code < 500:
        return TransientChannelError(f"SMTP {what}: {code} {message}"[:300], code=f"smtp_{code}")
    return PermanentChannelError(f"SMTP {what}: {code} {message}"[:300], code=f"smtp_{code}")


def check_smtp_security(cfg: SmtpConfig) -> None:
    """Refuse AUTH over an unencrypted connection unless explicitly allowed."""
    logs_in = cfg.username is not None and (cfg.password is not None or cfg.oauth2 is not None)
    if cfg.security == "none" and logs_in and not cfg.allow_plaintext_auth:
        raise PermanentChannelError(
            f"SMTP {cfg.host}:{cfg.port}: security 'none' would send the credentials "
            "unencrypted; use 'tls' or 'starttls', or set allow_plaintext_auth on a trusted "
            "network", code="smtp_plaintext_refused")


async def smtp_send(cfg: SmtpConfig, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
    """Hand ``msg`` to the SMTP server; raise Transient/PermanentChannelError on failure.

    With OAuth2, a refused token (535) is refreshed and the send tried once more.
    """
    check_smtp_security(cfg)
    if cfg.oauth2 is None:
        await _send_once(cfg, msg, sender, recipients, None)
        return
    source = token_source(cfg.oauth2)
    for attempt in (1, 2):
        token = await source.token()
        try:
            await _send_once(cfg, msg, sender, recipients, token)
            return
        except PermanentChannelError as exc:
            if exc.code != "smtp_535" or attempt == 2:
                raise
            source.invalidate(token)
            log.warning("SMTP XOAUTH2 refused the access token; refreshing it once")


async def _send_once(cfg: SmtpConfig, msg: EmailMessage, sender: str, recipients: list[str],
                     token: str | None) -> None:
    context = cfg.ssl_context or (tls_context(cfg.ca_file) if cfg.security != "none" else None)

    async def access_token() -> str:
        assert token is not None
        return token

    try:
        errors, _ = await aiosmtplib.send(
            msg, sender=sender, recipients=recipients, hostname=cfg.host, port=cfg.port,
            username=cfg.username, password=cfg.password if token is None else None,
            oauth_token_generator=access_token if token is not None else None,
            timeout=cfg.timeout_s, use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls", tls_context=context,
        )
    except ssl.SSLCertVerificationError as exc:
        raise PermanentChannelError(
            f"SMTP server {cfg.host}:{cfg.port} certificate rejected: {exc.verify_message}",
            code="smtp_tls_verify") from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        worst = max(codes, default=550) if all(c >= 500 for c in codes) else min(codes)
        raise _by_code(worst, "all recipients refused", "RCPT") from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise _by_code(exc.code, exc.message, type(exc).__name__) from exc
    except aiosmtplib.SMTPNotSupported as exc:
        raise PermanentChannelError(f"SMTP server lacks a required feature: {exc}",
                                    code="smtp_unsupported") from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise TransientChannelError(f"SMTP connection failed: {exc!r}"[:300],
                                    code="smtp_connect") from exc
    if errors:
        # Some recipients (a Cc) were refused while the main one was accepted: the reply went
        # out, so this is not a failure of the item; say so in the log.
        log.warning("SMTP accepted the reply but refused %d recipient(s)", len(errors))
