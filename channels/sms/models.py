"""Typed values and configuration of the SMS channel.

Configuration is plain frozen dataclasses built by the hub from its settings (only
``hub/settings.py`` reads the environment); nothing here reads files or variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from channels.sms.keywords import KeywordConfig


class DeliveryStatus(StrEnum):
    """The timeline states of an outbound SMS."""

    QUEUED = "queued"
    SENT = "sent"  # handed to the operator's SMSC
    DELIVERED = "delivered"  # the handset confirmed
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery receipt for a message we sent.

    ``message_id`` equals the ``SendResult.external_id`` that ``send()`` returned, whatever the
    provider, so the hub can find the outbound interaction it updates.
    """

    provider: Literal["kannel", "twilio"]
    message_id: str
    status: DeliveryStatus
    raw_status: str  # provider's own value: Kannel %d (1, 2, 4, 8, 16), Twilio MessageStatus
    received_at: datetime
    recipient: str | None = None  # E.164 of the handset when known
    detail: str | None = None  # Kannel %A SMSC answer, Twilio ErrorCode
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    """Concatenation header of one part of a long message (UDH IE 0x00 or 0x08)."""

    ref: int
    total: int
    seq: int
    ref_bits: Literal[8, 16]


@dataclass(frozen=True, slots=True)
class MediaRef:
    """An MMS media item announced by a provider webhook (downloaded by the channel)."""

    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class KannelConfig:
    """How to reach Kannel's smsbox and how it reaches us.

    ``dlr_url`` is the public URL of the hub's DLR route (``/channels/sms/kannel/dlr``); each
    sent message adds its id and an HMAC of it (keyed by ``dlr_secret``) so forged receipts are
    refused. ``inbound_token``, when set, must be present as ``token=`` in smsbox's get-url.
    """

    sendsms_url: str  # e.g. http://127.0.0.1:13013/cgi-bin/sendsms
    username: str
    password: str
    sender: str  # our number or short code: the "from" of outbound messages
    dlr_url: str
    dlr_secret: str
    dlr_mask: int = 31  # 1 delivered | 2 undelivered | 4 queued | 8 smsc ack | 16 smsc nack
    inbound_token: str | None = None
    smsc_id: str | None = None  # force a route in Kannel
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """A Twilio-compatible provider: REST for sending, signed webhooks for receiving.

    ``webhook_base_url`` is the scheme+host the provider calls (behind a TLS proxy the request
    the hub sees is not the URL the provider signed); when ``None`` the request URL is used.
    """

    account_sid: str
    auth_token: str
    sender: str | None = None  # From number; or use messaging_service_sid
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    status_callback_url: str | None = None
    webhook_base_url: str | None = None
    fetch_media: bool = True
    media_max_bytes: int = 5 * 1024 * 1024
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class SmsConfig:
    """One SMS channel instance (one number / gateway account)."""

    channel_id: str
    provider: Literal["kannel", "twilio"]
    kannel: KannelConfig | None = None
    twilio: TwilioConfig | None = None
    default_region: str = "US"  # for national-format numbers from the gateway
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    concat_timeout: float = 120.0  # seconds before a partial long message is ingested anyway
    concat_sweep_interval: float = 5.0
    replay_window: float = 24 * 3600.0  # how long a webhook signature is remembered
    rate_per_second: float = 1.0  # outbound messages per destination number
    rate_burst: int = 5
    max_segments: int = 10

    def __post_init__(self) -> None:
        if self.provider == "kannel" and self.kannel is None:
            raise ValueError("SmsConfig(provider='kannel') needs kannel=KannelConfig(...)")
        if self.provider == "twilio" and self.twilio is None:
            raise ValueError("SmsConfig(provider='twilio') needs twilio=TwilioConfig(...)")
