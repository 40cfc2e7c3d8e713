"""Sending through Kannel's smsbox ``/cgi-bin/sendsms`` HTTP interface.

Each message carries our own id (``mid``) and its HMAC (``sig``) inside its dlr-url, with
Kannel's escapes (``%d`` status, ``%A`` SMSC answer, ``%p`` handset, ``%T`` time, ``%F`` SMSC
message id) appended, so receipts come back to the hub's DLR route already correlated.

Kannel answers 202 with ``0: Accepted for delivery`` or ``3: Queued for later delivery``;
4xx means the request itself is wrong (auth, missing field: never worth retrying); 5xx or a
network failure is transient.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import httpx

from channels.base import PermanentChannelError, TransientChannelError
from channels.sms.kannel_parse import KANNEL_DLR_QUERY_TEMPLATE
from channels.sms.models import KannelConfig
from channels.sms.segments import SmsEncoding
from channels.sms.signature import dlr_token

log = logging.getLogger(__name__)


def dlr_url_for(config: KannelConfig, message_id: str) -> str:
    """The dlr-url for one message: ours, signed, plus Kannel's escapes."""
    ours = urlencode({"mid": message_id, "sig": dlr_token(config.dlr_secret, message_id)})
    separator = "&" if "?" in config.dlr_url else "?"
    return f"{config.dlr_url}{separator}{ours}&{KANNEL_DLR_QUERY_TEMPLATE}"


def sendsms_params(
    config: KannelConfig, *, to: str, text: str, message_id: str, encoding: SmsEncoding
) -> dict[str, str]:
    """Query parameters of one sendsms request (text always UTF-8; Kannel recodes it)."""
    params = {
        "username": config.username,
        "password": config.password,
        "from": config.sender,
        "to": to,
        "text": text,
        "charset": "UTF-8",
        "coding": "2" if encoding is SmsEncoding.UCS2 else "0",
        "dlr-mask": str(config.dlr_mask),
        "dlr-url": dlr_url_for(config, message_id),
    }
    if config.smsc_id:
        params["smsc"] = config.smsc_id
    return params


async def kannel_send(
    http: httpx.AsyncClient,
    config: KannelConfig,
    *,
    to: str,
    text: str,
    message_id: str,
    encoding: SmsEncoding,
) -> str:
    """Submit one message; return ``"queued"`` (Kannel accepted it). Raises ChannelErrors."""
    params = sendsms_params(config, to=to, text=text, message_id=message_id, encoding=encoding)
    try:
        response = await http.get(config.sendsms_url, params=params, timeout=config.timeout)
    except httpx.HTTPError as exc:
        raise TransientChannelError(
            f"Kannel sendsms unreachable: {type(exc).__name__}", code="sms_gateway_unreachable"
        ) from exc
    answer = response.text.strip()[:120]
    if response.status_code in (200, 202):
        log.info("kannel: message %s accepted (%s)", message_id, answer)
        return "queued"
    log.warning("kannel: sendsms refused message %s: HTTP %s", message_id, response.status_code)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientChannelError(
            f"Kannel sendsms busy (HTTP {response.status_code}): {answer}", code="sms_gateway_busy"
        )
    code = "sms_gateway_auth" if response.status_code in (401, 403) else "sms_rejected"
    raise PermanentChannelError(
        f"Kannel sendsms rejected the message (HTTP {response.status_code}): {answer}", code=code
    )
