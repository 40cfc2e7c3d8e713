"""Gateway mail → fax ``Inbound``: recognise, render pages, OCR; never lose the fax.

Steps (each failure is recorded in ``metadata["fax"]`` and the next step still runs):
parse the mail as email (for Message-ID, subject, attachments), recognise the gateway's fields
(:mod:`channels.fax.detect`), render the document's pages to PNG in a worker thread, OCR each page
with the engine (a subprocess). The sender is the fax number in E.164 when the gateway gave a
usable one (so the fax joins the contact's calls and SMS), else the gateway's email address.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from channels.base import Address, AddressKind, Attachment, ChannelKind, Inbound
from channels.email.parse import ParseOptions, parse_email
from channels.email.tokens import parse_ticket_tokens, ticket_ref
from channels.fax.config import FaxConfig
from channels.fax.detect import recognise_fax
from channels.fax.ocr import OcrEngine, OcrError
from channels.fax.pages import RenderError, render_pages

log = logging.getLogger(__name__)


async def fax_inbound(
    raw: bytes, cfg: FaxConfig, ocr: OcrEngine | None, parse_options: ParseOptions
) -> Inbound:
    """Build the ``Inbound`` for one gateway mail. Raises only ParseError (from the email parse)."""
    mail = parse_email(raw, channel_id=cfg.channel_id, channel=ChannelKind.FAX,
                       options=parse_options)
    meta: dict[str, Any] = {"recognised": False}
    gateways = {a.lower() for a in cfg.gateway_senders}
    info = None
    if not gateways or mail.sender.value in gateways:
        info = await asyncio.to_thread(recognise_fax, raw, default_region=cfg.default_region)
    if info is None or info.document is None:
        log.info("fax mailbox %s: mail is not a recognised fax; ingesting as is", cfg.channel_id)
        return replace(mail, metadata={**mail.metadata, "fax": meta})

    meta.update(recognised=True, gateway=info.gateway, pages_reported=info.pages,
                sender_raw=info.sender_raw, csid=info.csid, document=info.document.filename)
    sender = mail.sender
    if info.sender_e164:
        sender = Address(AddressKind.PHONE, info.sender_e164)
    else:
        meta["sender_error"] = "no usable fax number; kept the gateway's address"

    page_images: list[bytes] = []
    try:
        page_images = await asyncio.to_thread(
            render_pages, info.document.data, info.document.content_type, cfg.max_pages
        )
    except RenderError as exc:
        meta["render_error"] = str(exc)
        log.warning("fax mailbox %s: pages not rendered: %s", cfg.channel_id, exc)
    meta["pages"] = len(page_images) if page_images else info.pages

    texts: list[str] = []
    if cfg.ocr and ocr is not None and page_images:
        try:
            for png in page_images:
                texts.append(await ocr.page_text(png))
        except OcrError as exc:
            meta["ocr_error"] = str(exc)
            texts = []
            log.warning("fax mailbox %s: OCR failed: %s", cfg.channel_id, exc)
    text = "\n\n".join(t for t in texts if t).strip()
    meta["ocr"] = bool(text)

    attachments: list[Attachment] = [info.document]
    if cfg.attach_page_images:
        attachments.extend(Attachment(f"page-{i}.png", "image/png", png)
                           for i, png in enumerate(page_images, start=1))
    refs = list(mail.thread_refs)
    refs.extend(ticket_ref(cid) for cid in parse_ticket_tokens(text) if ticket_ref(cid) not in refs)
    return Inbound(
        channel=ChannelKind.FAX,
        channel_id=cfg.channel_id,
        external_id=mail.external_id,
        sender=sender,
        sender_name=info.csid,
        text=text,
        recipient=mail.recipient,
        subject=mail.subject,
        attachments=tuple(attachments),
        thread_refs=tuple(refs),
        received_at=info.received_at or mail.received_at,
        auto_generated=False,
        metadata={"fax": meta, "message_id": mail.metadata.get("message_id"),
                  "gateway_address": mail.sender.value},
    )
