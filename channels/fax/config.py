"""Settings of one fax-to-email mailbox and its email-to-fax gateway."""

from __future__ import annotations

from dataclasses import dataclass

from channels.email.config import EmailConfig


@dataclass(frozen=True, slots=True)
class FaxConfig:
    """``email`` is the mailbox the gateway delivers to (and the SMTP server replies leave by).

    ``send_address`` is the gateway's email-to-fax address, a template with ``{number}`` (E.164
    digits without ``+``) or ``{e164}``: e.g. ``{number}@fax.example.net``.
    ``gateway_senders``: when not empty, only mail from these addresses is treated as a fax.
    """

    email: EmailConfig
    send_address: str | None = None
    default_region: str = "US"
    gateway_senders: tuple[str, ...] = ()
    ocr: bool = True
    ocr_lang: str = "eng"
    ocr_command: str = "tesseract"
    max_pages: int = 50
    attach_page_images: bool = True

    @property
    def channel_id(self) -> str:
        return self.email.channel_id
