"""The fax channel: fax-to-email in, email-to-fax out.

Theory of operation
-------------------
A fax gateway (HylaFAX, a T.38/SIP gateway, a hosted fax service) turns each received fax into
an email with the pages attached as TIFF or PDF. This channel reads the gateway's mailbox with
the same IMAP receive loop as the email channel (:class:`~channels.email.receiver.ImapReceiver`:
IDLE, UID tracking, ``\\Seen`` only after the hub committed, quarantine for unparseable mail),
but turns each mail into a fax :class:`~channels.base.Inbound`
(:func:`~channels.fax.ingest.fax_inbound`): the sender is the fax number normalised to E.164,
so the fax lands in the contact's history next to their calls and SMS; the pages are rendered
to PNG (Pillow for TIFF, poppler's ``pdftoppm`` for PDF) in a worker thread and OCR'd by
Tesseract in a subprocess, so the fax text is searchable. Rendering and OCR failures are
recorded in the metadata; the fax itself is always ingested with its original document.

Replying (:meth:`FaxChannel.send`): the agent's text becomes a small PDF
(:func:`~channels.fax.pdf.text_to_pdf`) mailed to the gateway's email-to-fax address for the
customer's number; SMTP errors map to transient/permanent exactly as for email. The gateway
delivers asynchronously, so the result status is ``queued``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from channels.base import (
    AddressKind,
    ChannelKind,
    Inbound,
    Outbound,
    PermanentChannelError,
    SendResult,
    Sink,
)
from channels.email.compose import our_message_id
from channels.email.parse import ParseOptions
from channels.email.receiver import ImapReceiver
from channels.email.smtp import smtp_send
from channels.email.state import MailboxStateStore
from channels.email.tokens import render_ticket_token
from channels.fax.config import FaxConfig
from channels.fax.ingest import fax_inbound
from channels.fax.ocr import OcrEngine, TesseractOcr
from channels.fax.pdf import text_to_pdf

# Documents a reply's attachments may be; email-to-fax gateways render each as further pages.
FAX_ATTACHMENT_TYPES = frozenset({"application/pdf", "image/tiff"})


class FaxChannel:
    """A :class:`channels.base.Channel` for one fax-to-email gateway mailbox."""

    kind = ChannelKind.FAX

    def __init__(self, config: FaxConfig, state_store: MailboxStateStore,
                 ocr: OcrEngine | None = None) -> None:
        self.config = config
        self.channel_id = config.channel_id
        self.ocr: OcrEngine | None = ocr or (
            TesseractOcr(config.ocr_command, config.ocr_lang) if config.ocr else None
        )
        email = config.email
        self._parse_options: ParseOptions = dataclasses.replace(
            email.parse, our_addresses=frozenset({email.address.lower()})
        )
        self.receiver = ImapReceiver(email.channel_id, email.imap, state_store, self.parse)

    async def parse(self, raw: bytes) -> Inbound:
        return await fax_inbound(raw, self.config, self.ocr, self._parse_options)

    async def run(self, sink: Sink) -> None:
        await self.receiver.run(sink)

    def gateway_address(self, e164: str) -> str:
        template = self.config.send_address
        if not template:
            raise PermanentChannelError("no email-to-fax address configured", code="no_gateway")
        return template.format(number=e164.lstrip("+"), e164=e164)

    async def check_send(self, outbound: Outbound) -> None:
        """Refuse at once what :meth:`send` could never deliver (``SendPrecheck``)."""
        if self.config.email.smtp is None:
            raise PermanentChannelError("no SMTP server configured for this fax mailbox",
                                        code="no_smtp")
        if outbound.to.kind is not AddressKind.PHONE:
            raise PermanentChannelError("fax reply to a non-phone address", code="bad_address")
        for att in outbound.attachments:
            if att.content_type.lower() not in FAX_ATTACHMENT_TYPES:
                raise PermanentChannelError(
                    f"{att.filename}: a fax can carry only PDF or TIFF documents "
                    f"(not {att.content_type})",
                    code="fax_attachment_unsupported",
                )
        self.gateway_address(outbound.to.value)

    async def send(self, outbound: Outbound) -> SendResult:
        email = self.config.email
        await self.check_send(outbound)
        assert email.smtp is not None
        to = self.gateway_address(outbound.to.value)
        try:
            token = render_ticket_token(outbound.conversation_id)
        except ValueError:
            token = ""
        header = "\n".join(filter(None, [
            f"From: {outbound.author_name or email.display_name or email.address}",
            f"To: {outbound.to.value}", f"Re: {outbound.subject}" if outbound.subject else "",
            f"Reference: {token}" if token else "",
        ]))
        pdf = text_to_pdf(outbound.text, header=header, title=outbound.subject or "Fax")
        domain = email.message_id_domain or email.address.rpartition("@")[2]
        msg = EmailMessage()
        msg["From"] = formataddr((email.display_name or "", email.address))
        msg["To"] = to
        msg["Subject"] = f"{outbound.subject or 'Fax'} {token}".strip()
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = our_message_id(outbound.idempotency_key, domain)
        msg.set_content("Fax document attached.\n")
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="fax.pdf")
        for att in outbound.attachments:  # the gateway faxes them as pages after the text
            _, _, subtype = att.content_type.lower().partition("/")
            msg.add_attachment(att.data, maintype="application" if subtype == "pdf" else "image",
                               subtype=subtype, filename=att.filename)
        await smtp_send(email.smtp, msg, email.address, [to])
        return SendResult(external_id=str(msg["Message-ID"]), status="queued")
