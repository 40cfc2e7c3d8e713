"""Sending through a Twilio-compatible REST API, and fetching MMS media it announces.

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth
(AccountSid, AuthToken) and a form body; 201 returns JSON with the message ``sid``. The base URL
is configurable so a compatible provider (or a local stand-in in tests) can be used.

Error mapping: network failure, 429 and 5xx are transient (429 honours ``Retry-After``);
401/403 are configuration errors; other 4xx are permanent, with Twilio's error codes 21610
(recipient unsubscribed) and 21211/21614 (bad number) mapped to stable codes.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Any

import httpx

from channels.base import Attachment, PermanentChannelError, TransientChannelError
from channels.sms.models import MediaRef, TwilioConfig

log = logging.getLogger(__name__)

_OPTED_OUT = {21610}
_BAD_NUMBER = {21211, 21614, 21612, 21408}


class ProviderRateLimited(TransientChannelError):
    """The provider said 429; ``retry_after`` is its hint in seconds."""

    code = "sms_provider_rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def messages_url(config: TwilioConfig) -> str:
    return f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Messages.json"


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body: Any = response.json()
    except ValueError:
        return None, response.text.strip()[:120]
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(body.get("message", ""))[:200]


async def twilio_send(
    http: httpx.AsyncClient, config: TwilioConfig, *, to: str, text: str
) -> tuple[str, str]:
    """Create one message; return (sid, provider status). Raises ChannelErrors."""
    form = {"To": to, "Body": text}
    if config.messaging_service_sid:
        form["MessagingServiceSid"] = config.messaging_service_sid
    elif config.sender:
        form["From"] = config.sender
    else:
        raise PermanentChannelError("Twilio channel has no sender number", code="sms_misconfigured")
    if config.status_callback_url:
        form["StatusCallback"] = config.status_callback_url
    try:
        response = await http.post(
            messages_url(config),
            data=form,
            auth=(config.account_sid, config.auth_token),
            timeout=config.timeout,
        )
    except httpx.HTTPError as exc:
        raise TransientChannelError(
            f"SMS provider unreachable: {type(exc).__name__}", code="sms_gateway_unreachable"
        ) from exc
    if response.status_code in (200, 201):
        body = response.json()
        sid = body.get("sid") if isinstance(body, dict) else None
        if not isinstance(sid, str) or not sid:
            raise TransientChannelError("provider answered without a sid", code="sms_bad_answer")
        return sid, str(body.get("status", "queued"))
    code, message = _error_body(response)
    log.warning("twilio: send refused: HTTP %s code %s", response.status_code, code)
    if response.status_code == 429:
        retry = response.headers.get("Retry-After", "1")
        after = float(retry) if retry.replace(".", "", 1).isdigit() else 1.0
        raise ProviderRateLimited(f"provider rate limit: {message}", retry_after=after)
    if response.status_code >= 500:
        raise TransientChannelError(
            f"provider error HTTP {response.status_code}: {message}", code="sms_gateway_busy"
        )
    if response.status_code in (401, 403):
        raise PermanentChannelError(
            f"provider refused our credentials: {message}", code="sms_gateway_auth"
        )
    if code in _OPTED_OUT:
        raise PermanentChannelError(
            "The recipient has unsubscribed (texted STOP) at the provider; they must text START "
            "before they can receive messages again.",
            code="sms_opted_out",
        )
    if code in _BAD_NUMBER:
        raise PermanentChannelError(
            f"provider rejected the number: {message}", code="sms_bad_address"
        )
    raise PermanentChannelError(
        f"provider rejected the message ({code}): {message}", code="sms_rejected"
    )


async def fetch_media(
    http: httpx.AsyncClient, config: TwilioConfig, media: MediaRef, index: int
) -> Attachment:
    """Download one MMS item (provider auth, redirects followed, size capped)."""
    async with http.stream(
        "GET",
        media.url,
        auth=(config.account_sid, config.auth_token),
        follow_redirects=True,
        timeout=config.timeout,
    ) as response:
        if response.status_code != 200:
            raise TransientChannelError(
                f"media fetch HTTP {response.status_code}", code="sms_media_fetch"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > config.media_max_bytes:
                raise PermanentChannelError("media item too large", code="sms_media_too_large")
            chunks.append(chunk)
    ctype = media.content_type.split(";")[0].strip() or "application/octet-stream"
    extension = mimetypes.guess_extension(ctype) or ".bin"
    return Attachment(filename=f"mms-{index}{extension}", content_type=ctype, data=b"".join(chunks))
