"""Channel-host factories for ``kind: email`` and ``kind: fax`` (fax-to-email gateways).

The row's ``address`` is the mailbox address (for fax rows: the gateway mailbox or the fax
number) and is the channel id that inbound items carry, so ingest finds the row and its queue.
``config`` is validated with a strict model: unknown keys are refused so a typo is an error, not
a silently ignored setting. Secrets can come from the environment at ``apply`` time through
``*_env`` keys (``password_env``, ``smtp_password_env``, ``oauth2_client_secret_env``,
``oauth2_refresh_token_env``). The IMAP read position (UIDVALIDITY, last UID) is kept on the
hub's channel state store, so a restart resumes where the last committed message was. See
``docs/channels/email.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from channels.email import EmailChannel, EmailConfig, ImapConfig, MailboxState, SmtpConfig
from channels.email.oauth import OAuth2Config
from channels.fax import FaxChannel, FaxConfig
from hub.channel_host import HostContext, Hosted, register
from hub.db.models import ChannelInstance
from hub.state import StateStore

Text = Annotated[str, Field(min_length=1, max_length=1000)]
Port = Annotated[int, Field(ge=1, le=65535)]
Url = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=1000)]


class EmailChannelConfigError(ValueError):
    """A channel row's config cannot build a mail channel; the message says which key."""


class MailRowConfig(BaseModel):
    """The ``config`` of an email (or fax) channel row."""

    model_config = ConfigDict(extra="forbid")

    imap_host: Text
    imap_port: Port = 993
    imap_security: Literal["tls", "starttls", "none"] = "tls"
    ca_file: Text | None = None  # verify IMAP and SMTP servers against this CA only
    allow_plaintext_auth: bool = False  # required to log in over security "none"
    username: Text | None = None  # default: the row's address
    password: Text | None = None  # required unless OAuth2 is configured
    oauth2_token_url: Url | None = None
    oauth2_client_id: Text | None = None
    oauth2_client_secret: Text | None = None
    oauth2_refresh_token: Annotated[str, Field(min_length=1, max_length=8000)] | None = None
    oauth2_scope: Text | None = None
    oauth2_smtp: bool = True  # SMTP logs in with the same OAuth2 token (else smtp_password)
    mailbox: Text = "INBOX"
    after_ingest: Literal["seen", "move"] = "seen"
    processed_folder: Text = "Processed"
    quarantine_folder: Text | None = "Quarantine"
    use_idle: bool = True
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    smtp_host: Text | None = None
    smtp_port: Port = 587
    smtp_security: Literal["tls", "starttls", "none"] = "starttls"
    smtp_auth: bool = True  # log in to SMTP (with smtp_username/password, default the IMAP ones)
    smtp_username: Text | None = None  # default: username
    smtp_password: Text | None = None  # default: password
    display_name: Text | None = None
    sent_folder: Text | None = None
    message_id_domain: Text | None = None

    @model_validator(mode="after")
    def _credentials(self) -> MailRowConfig:
        oauth = (self.oauth2_token_url, self.oauth2_client_id, self.oauth2_client_secret,
                 self.oauth2_refresh_token)
        if any(oauth) and not all(oauth):
            raise ValueError("oauth2 needs oauth2_token_url, oauth2_client_id, "
                             "oauth2_client_secret and oauth2_refresh_token together")
        if not any(oauth) and self.password is None:
            raise ValueError("password is required (or configure oauth2_*)")
        plain = [k for k, on in (("imap_security", self.imap_security == "none"),
                                 ("smtp_security", self.smtp_host is not None and self.smtp_auth
                                  and self.smtp_security == "none")) if on]
        if plain and not self.allow_plaintext_auth:
            raise ValueError(f"{plain[0]}: none would send the credentials unencrypted; use tls "
                             "or starttls, or set allow_plaintext_auth: true on a trusted network")
        return self


class FaxRowConfig(MailRowConfig):
    send_address: Text | None = None  # e.g. "{number}@fax.example.net"
    gateway_senders: list[Text] = []
    ocr: bool = True
    ocr_lang: Annotated[str, Field(pattern=r"^[a-z_+]{3,40}$")] = "eng"
    default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class DbMailboxState:
    """:class:`channels.email.MailboxStateStore` on the hub's channel state store."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    async def get(self, channel_id: str, mailbox: str) -> MailboxState | None:
        value = await self._state.get(channel_id, "imap", mailbox)
        if value is None:
            return None
        return MailboxState(int(value["uidvalidity"]), int(value["last_uid"]))

    async def set(self, channel_id: str, mailbox: str, state: MailboxState) -> None:
        await self._state.put(
            channel_id,
            "imap",
            mailbox,
            {"uidvalidity": state.uidvalidity, "last_uid": state.last_uid},
        )


def _parse(model: type[MailRowConfig], instance: ChannelInstance) -> MailRowConfig:
    try:
        return model.model_validate(instance.config or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise EmailChannelConfigError(
            f"{instance.kind} channel {instance.name!r}: config.{where}: {first['msg']}"
        ) from None


def _oauth2(cfg: MailRowConfig) -> OAuth2Config | None:
    if not cfg.oauth2_token_url:
        return None
    assert cfg.oauth2_client_id and cfg.oauth2_client_secret and cfg.oauth2_refresh_token
    return OAuth2Config(token_url=cfg.oauth2_token_url, client_id=cfg.oauth2_client_id,
                        client_secret=cfg.oauth2_client_secret,
                        refresh_token=cfg.oauth2_refresh_token, scope=cfg.oauth2_scope)


def email_config(instance: ChannelInstance, cfg: MailRowConfig) -> EmailConfig:
    username = cfg.username or instance.address
    oauth2 = _oauth2(cfg)
    smtp = None
    if cfg.smtp_host:
        smtp_oauth = oauth2 if cfg.smtp_auth and cfg.oauth2_smtp and not cfg.smtp_password else None
        smtp = SmtpConfig(
            host=cfg.smtp_host,
            port=cfg.smtp_port,
            username=(cfg.smtp_username or username) if cfg.smtp_auth else None,
            password=(cfg.smtp_password or cfg.password)
            if cfg.smtp_auth and smtp_oauth is None else None,
            security=cfg.smtp_security,
            ca_file=cfg.ca_file,
            allow_plaintext_auth=cfg.allow_plaintext_auth,
            oauth2=smtp_oauth,
        )
    imap = ImapConfig(
        host=cfg.imap_host,
        username=username,
        password=cfg.password or "",
        port=cfg.imap_port,
        security=cfg.imap_security,
        ca_file=cfg.ca_file,
        allow_plaintext_auth=cfg.allow_plaintext_auth,
        oauth2=oauth2,
        mailbox=cfg.mailbox,
        after_ingest=cfg.after_ingest,
        processed_folder=cfg.processed_folder,
        quarantine_folder=cfg.quarantine_folder,
        use_idle=cfg.use_idle,
        poll_interval_s=cfg.poll_interval_s,
    )
    mailbox_address = instance.address if "@" in instance.address else username
    return EmailConfig(
        channel_id=instance.address,
        address=mailbox_address,
        imap=imap,
        smtp=smtp,
        display_name=cfg.display_name,
        sent_folder=cfg.sent_folder,
        message_id_domain=cfg.message_id_domain,
    )


@register("email")
async def build_email(instance: ChannelInstance, ctx: HostContext) -> Hosted:
    cfg = _parse(MailRowConfig, instance)
    channel = EmailChannel(email_config(instance, cfg), DbMailboxState(ctx.state))
    return Hosted(channel=channel)


@register("fax")
async def build_fax(instance: ChannelInstance, ctx: HostContext) -> Hosted:
    cfg = _parse(FaxRowConfig, instance)
    assert isinstance(cfg, FaxRowConfig)
    fax = FaxConfig(
        email=email_config(instance, cfg),
        send_address=cfg.send_address,
        default_region=cfg.default_region or ctx.settings.default_region,
        gateway_senders=tuple(cfg.gateway_senders),
        ocr=cfg.ocr,
        ocr_lang=cfg.ocr_lang,
    )
    return Hosted(channel=FaxChannel(fax, DbMailboxState(ctx.state)))
