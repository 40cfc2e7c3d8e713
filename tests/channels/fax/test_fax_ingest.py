"""Fax mail → Inbound with rendered pages and real Tesseract OCR (tesseract-ocr, poppler)."""

from __future__ import annotations

import io
import re

from PIL import Image

from channels.base import AddressKind, ChannelKind
from channels.email.config import EmailConfig, ImapConfig
from channels.email.parse import ParseOptions
from channels.fax.config import FaxConfig
from channels.fax.ingest import fax_inbound
from channels.fax.ocr import TesseractOcr
from channels.fax.pages import render_tiff
from channels.fax.pdf import text_to_pdf

from .faxgen import fax_tiff, gateway_mail, hylafax_mail


def _cfg(**overrides: object) -> FaxConfig:
    imap = ImapConfig(host="127.0.0.1", username="x", password="x", security="none")
    fields: dict[str, object] = {"email": EmailConfig("fax", "fax-inbox@contacthub.test", imap)}
    fields.update(overrides)
    return FaxConfig(**fields)  # type: ignore[arg-type]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9#-]+", text.upper()))


async def test_multipage_g4_tiff_is_rendered_and_ocred() -> None:
    tiff = fax_tiff([["ORDER FORM", "Customer 4471", "Quantity 12 boxes"],
                     ["SECOND PAGE", "Deliver to Springfield"]])
    raw = hylafax_mail(tiff, pages=2)
    inbound = await fax_inbound(raw, _cfg(), TesseractOcr(), ParseOptions())
    assert inbound.channel is ChannelKind.FAX
    assert inbound.sender.kind is AddressKind.PHONE and inbound.sender.value == "+12125550123"
    words = _words(inbound.text)
    assert {"ORDER", "FORM", "4471", "QUANTITY", "BOXES", "SECOND", "PAGE", "SPRINGFIELD"} <= words
    assert inbound.text.index("ORDER") < inbound.text.index("SECOND")  # page order kept
    fax = inbound.metadata["fax"]
    assert fax["recognised"] and fax["pages"] == 2 and fax["ocr"] and "ocr_error" not in fax
    names = [a.filename for a in inbound.attachments]
    assert names == ["fax000000123.tif", "page-1.png", "page-2.png"]
    assert Image.open(io.BytesIO(inbound.attachments[1].data)).format == "PNG"
    assert inbound.external_id == "<fax-1@gateway.example>"
    assert inbound.metadata["gateway_address"] == "fax@gateway.example"


async def test_g3_normal_resolution_tiff_is_stretched_and_ocred() -> None:
    tiff = fax_tiff([["NORMAL RESOLUTION FAX", "Invoice 9001"]], compression="group3",
                    dpi=(204, 98))
    pages = render_tiff(tiff)
    assert 1100 <= Image.open(io.BytesIO(pages[0])).height <= 1150  # 550 lines x 204/98
    raw = hylafax_mail(tiff, pages=1)
    inbound = await fax_inbound(raw, _cfg(), TesseractOcr(), ParseOptions())
    assert {"NORMAL", "RESOLUTION", "INVOICE", "9001"} <= _words(inbound.text)


async def test_pdf_fax_is_rendered_with_pdftoppm_and_ocred() -> None:
    pdf = text_to_pdf("Please call me back about the CONTRACT renewal.\nReference [#CH-77]")
    raw = gateway_mail(subject="Fax from +44 20 7946 0958 (1 page)", body="", document=pdf,
                       filename="fax.pdf", content_type="application/pdf")
    inbound = await fax_inbound(raw, _cfg(), TesseractOcr(), ParseOptions())
    assert inbound.sender.value == "+442079460958"
    assert {"CONTRACT", "RENEWAL", "CALL"} <= _words(inbound.text)
    assert "ticket:77" in inbound.thread_refs  # a cover sheet's ticket token threads the fax


async def test_failing_ocr_never_loses_the_fax() -> None:
    tiff = fax_tiff([["LOST?"]])
    inbound = await fax_inbound(hylafax_mail(tiff), _cfg(),
                                TesseractOcr(command="/nonexistent/tesseract"), ParseOptions())
    assert inbound.text == ""
    assert "cannot start" in inbound.metadata["fax"]["ocr_error"]
    assert inbound.sender.value == "+12125550123"
    assert inbound.attachments[0].data == tiff


async def test_unreadable_document_still_ingests() -> None:
    raw = hylafax_mail(b"II*\x00garbage-not-a-tiff")
    inbound = await fax_inbound(raw, _cfg(), TesseractOcr(), ParseOptions())
    fax = inbound.metadata["fax"]
    assert "render_error" in fax and fax["pages"] == 2  # the gateway's page count remains
    assert inbound.attachments[0].filename == "fax000000123.tif"


async def test_mail_from_unknown_sender_is_kept_as_plain_mail() -> None:
    raw = hylafax_mail(fax_tiff([["x"]]))
    cfg = _cfg(gateway_senders=("real-gateway@example.net",))
    inbound = await fax_inbound(raw, cfg, TesseractOcr(), ParseOptions())
    assert inbound.channel is ChannelKind.FAX
    assert inbound.sender.kind is AddressKind.EMAIL
    assert inbound.metadata["fax"] == {"recognised": False}
