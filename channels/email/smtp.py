"""Sending over SMTP (aiosmtplib) with failures sorted into retry / dead-letter.

The mapping follows the SMTP reply classes (RFC 5321 §4.2.1): 4xx is a transient condition
(greylisting, mailbox busy, quota), 5xx is permanent (no such user, rejected content, auth
refused). Anything on the connection level (refused, reset, timeout, TLS handshake) is
transient: the outbox retries it later.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage

import aiosmtplib

from channels.base import ChannelError, PermanentChannelError, TransientChannelError
from channels.email.config import SmtpConfig

log = logging.getLogger(__name__)


def _by_code(code: int, message: str, what: str) -> ChannelError:
    if 400 <= code < 500:
        return TransientChannelError(f"SMTP {what}: {code} {message}"[:300], code=f"smtp_{code}")
    return PermanentChannelError(f"SMTP {what}: {code} {message}"[:300], code=f"smtp_{code}")


async def smtp_send(cfg: SmtpConfig, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
    """Hand ``msg`` to the SMTP server; raise Transient/PermanentChannelError on failure."""
    try:
        errors, _ = await aiosmtplib.send(
            msg, sender=sender, recipients=recipients, hostname=cfg.host, port=cfg.port,
            username=cfg.username, password=cfg.password, timeout=cfg.timeout_s,
            use_tls=cfg.security == "tls", start_tls=cfg.security == "starttls",
            tls_context=cfg.ssl_context,
        )
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
