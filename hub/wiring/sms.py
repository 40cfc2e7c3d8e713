"""Channel-host factory for ``kind: sms``: a channel row becomes a running :class:`SmsChannel`.

The row's ``address`` is our number (E.164) and doubles as the channel id that inbound
messages carry, so ingest finds the row (and its queue) by it. The row's ``config`` is
validated here with a strict model (unknown keys are refused, so a typo is an error and not a
silently ignored setting); :class:`SmsChannelConfigError` names the channel and the key, and the
host logs it and keeps the other channels running. Secrets can come from the environment via
``*_env`` keys at ``apply`` time (e.g. ``password_env``, ``auth_token_env``).

Gateways reach the hub at ``<callback_base_url>/channels/sms/<name>/...`` (default: the hub's
public URL). See ``docs/channels/sms.md`` for the Kannel and Twilio settings that match.

:class:`SmsChannel` implements the hub's optional ``check_send`` precheck, so the reply API
refuses a reply to an opted-out number at once instead of failing it later in the outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.routing import BaseRoute

from channels.addresses import normalize_phone
from channels.base import ParseError
from channels.sms import (
    KannelConfig,
    KeywordAction,
    KeywordConfig,
    SmsChannel,
    SmsConfig,
    TwilioConfig,
    sms_routes,
)
from hub.channel_host import HostContext, Hosted, register
from hub.db.models import ChannelInstance
from hub.settings import Settings
from hub.wiring.sms_stores import db_sms_stores

log = logging.getLogger(__name__)

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class SmsChannelConfigError(ValueError):
    """A channel row's config cannot build an SMS channel; the message says which key."""


class KeywordsIn(BaseModel):
    """Extra keywords on top of the built-in multilingual sets."""

    model_config = ConfigDict(extra="forbid")
    opt_out: list[Text] = []
    opt_in: list[Text] = []
    help: list[Text] = []


class SmsRowConfig(BaseModel):
    """The ``config`` of an sms channel row (see docs/channels/sms.md for each key)."""

    model_config = ConfigDict(extra="forbid")

    gateway: Literal["kannel", "twilio"]
    callback_base_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    sender: Text | None = None  # the "from" of outbound texts; default: the row's address
    # Kannel
    sendsms_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    username: Text | None = None
    password: Text | None = None
    dlr_secret: Annotated[str, Field(min_length=16)] | None = None
    inbound_token: Annotated[str, Field(min_length=8)] | None = None
    smsc_id: Text | None = None
    dlr_mask: Annotated[int, Field(ge=1, le=31)] = 31
    # Twilio-compatible provider
    account_sid: Text | None = None
    auth_token: Text | None = None
    base_url: Annotated[str, Field(pattern=r"^https?://")] = "https://api.twilio.com"
    messaging_service_sid: Text | None = None
    webhook_base_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    fetch_media: bool = True
    # behaviour
    keywords: KeywordsIn = KeywordsIn()
    keyword_replies: dict[Literal["opt_out", "opt_out_all", "opt_in", "help"], Text] = {}
    rate_per_second: Annotated[float, Field(gt=0, le=100)] = 1.0
    rate_burst: Annotated[int, Field(ge=1, le=1000)] = 5
    max_segments: Annotated[int, Field(ge=1, le=255)] = 10
    concat_timeout: Annotated[float, Field(ge=5, le=86400)] = 120.0

    @model_validator(mode="after")
    def _gateway_keys(self) -> SmsRowConfig:
        needed = {
            "kannel": ("sendsms_url", "username", "password", "dlr_secret"),
            "twilio": ("account_sid", "auth_token"),
        }[self.gateway]
        missing = [key for key in needed if getattr(self, key) is None]
        if missing:
            raise ValueError(f"gateway {self.gateway} needs {', '.join(missing)}")
        return self


@dataclass(frozen=True, slots=True)
class SmsChannelConfig:
    """An :class:`SmsConfig` plus the keyword confirmation texts (not part of SmsConfig)."""

    config: SmsConfig
    replies: dict[KeywordAction, str]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():  # messages only: the input values may be secrets
        msg = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"config.{where}: {msg}" if where else msg)
    return "; ".join(parts)


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a configured public URL: what a provider signs (the path is
    the request's own). ``None`` when no public URL is configured: use the request's URL."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sms_config_from_row(instance: ChannelInstance, settings: Settings) -> SmsChannelConfig:
    """Validate a channel row and build the channel's config (raises SmsChannelConfigError)."""
    try:
        row = SmsRowConfig.model_validate(instance.config or {})
    except ValidationError as exc:
        raise SmsChannelConfigError(f"sms channel {instance.name!r}: {_describe(exc)}") from None
    region = row.default_region or settings.default_region
    try:
        number = normalize_phone(instance.address, region)
    except ParseError as exc:
        raise SmsChannelConfigError(
            f"sms channel {instance.name!r}: address is not a phone number: {exc}"
        ) from None
    base = (row.callback_base_url or settings.effective_public_url).rstrip("/")
    base = f"{base}/channels/sms/{instance.name}"
    kannel = twilio = None
    if row.gateway == "kannel":
        assert row.sendsms_url and row.username and row.password and row.dlr_secret
        kannel = KannelConfig(
            sendsms_url=row.sendsms_url,
            username=row.username,
            password=row.password,
            sender=row.sender or number,
            dlr_url=f"{base}/kannel/dlr",
            dlr_secret=row.dlr_secret,
            dlr_mask=row.dlr_mask,
            inbound_token=row.inbound_token,
            smsc_id=row.smsc_id,
        )
    else:
        assert row.account_sid and row.auth_token
        twilio = TwilioConfig(
            account_sid=row.account_sid,
            auth_token=row.auth_token,
            sender=None if row.messaging_service_sid else (row.sender or number),
            messaging_service_sid=row.messaging_service_sid,
            base_url=row.base_url.rstrip("/"),
            status_callback_url=f"{base}/twilio/status",
            webhook_base_url=row.webhook_base_url
            or _origin(row.callback_base_url or settings.public_url),
            fetch_media=row.fetch_media,
        )
    config = SmsConfig(
        channel_id=number,
        provider=row.gateway,
        kannel=kannel,
        twilio=twilio,
        default_region=region,
        keywords=KeywordConfig(
            extra_opt_out=frozenset(row.keywords.opt_out),
            extra_opt_in=frozenset(row.keywords.opt_in),
            extra_help=frozenset(row.keywords.help),
        ),
        concat_timeout=row.concat_timeout,
        rate_per_second=row.rate_per_second,
        rate_burst=row.rate_burst,
        max_segments=row.max_segments,
    )
    replies = {KeywordAction(k): v for k, v in row.keyword_replies.items()}
    return SmsChannelConfig(config, replies)


@register("sms")
async def build_sms(instance: ChannelInstance, ctx: HostContext) -> Hosted:
    """Factory the channel host calls for each enabled ``kind: sms`` row."""
    built = sms_config_from_row(instance, ctx.settings)
    channel = SmsChannel(
        built.config,
        stores=db_sms_stores(ctx.state, built.config.channel_id),
        keyword_replies=built.replies,
    )
    routes: list[BaseRoute] = list(sms_routes(channel, ctx.sink))
    log.info(
        "sms channel %s: gateway %s, callbacks under /channels/sms/%s/",
        instance.name, built.config.provider, instance.name,
    )  # fmt: skip
    return Hosted(channel=channel, routes=routes, close=channel.aclose)
