"""Recognising fax gateway mails (pure; no OCR)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from channels.fax.detect import recognise_fax
from channels.fax.pdf import text_to_pdf

from .faxgen import fax_tiff, gateway_mail, hylafax_mail

TIFF = fax_tiff([["page one"]])
PDF = text_to_pdf("a faxed page")


def test_hylafax_faxrcvd_mail() -> None:
    info = recognise_fax(hylafax_mail(TIFF))
    assert info is not None
    assert info.gateway == "hylafax"
    assert info.sender_e164 == "+12125550123"  # CallID1 wins over the programmed TSI text
    assert info.pages == 2
    assert info.received_at == datetime(2026, 11, 16, 10, 5, 33, tzinfo=UTC)
    assert info.document is not None and info.document.content_type == "image/tiff"
    assert info.document.data == TIFF


@pytest.mark.parametrize(
    ("kwargs", "region", "e164", "pages", "gateway"),
    [
        (dict(subject="Fax received", body="See attachment.",
              headers={"X-Fax-Sender": "06 12 34 56 78", "X-Fax-Pages": "3",
                       "X-Fax-Received": "2026-11-16T09:00:00+01:00", "X-Fax-CSID": "CABINET"}),
         "FR", "+33612345678", 3, "t38-headers"),
        (dict(subject='eFax message from "+1 (415) 555-0199" - 2 page(s), Caller-ID: '
                      "1-415-555-0199", body="You have received a 2 page fax."),
         "US", "+14155550199", 2, "hosted"),
        (dict(subject="New Fax Message from (650) 555-0142",
              body="You have received a fax.\nPages: 1\n"),
         "US", "+16505550142", 1, "hosted"),
        (dict(subject="Fax von 0211 1234567 (4 Seiten)", body="Ein Fax ist eingegangen."),
         "DE", "+492111234567", 4, "hosted"),
        (dict(subject="Fax from anonymous", body="Caller unknown."),
         "US", None, None, "hosted"),
    ],
)
def test_gateway_styles(kwargs: dict[str, object], region: str, e164: str | None,
                        pages: int | None, gateway: str) -> None:
    raw = gateway_mail(document=PDF, filename="fax.pdf", content_type="application/pdf",
                       **kwargs)  # type: ignore[arg-type]
    info = recognise_fax(raw, default_region=region)
    assert info is not None
    assert (info.sender_e164, info.pages, info.gateway) == (e164, pages, gateway)


def test_header_receive_time_and_csid() -> None:
    raw = gateway_mail(subject="Fax", body="", document=TIFF, filename="f.tif",
                       headers={"X-Fax-From": "+44 20 7946 0958",
                                "X-Fax-Received": "2026-11-16T09:00:00+01:00",
                                "X-Fax-CSID": "LONDON OFFICE"})
    info = recognise_fax(raw)
    assert info is not None and info.sender_e164 == "+442079460958"
    assert info.received_at == datetime(2026, 11, 16, 9, tzinfo=timezone(timedelta(hours=1)))
    assert info.csid == "LONDON OFFICE"


def test_a_mail_with_a_pdf_is_not_a_fax() -> None:
    raw = gateway_mail(subject="Invoice 42", body="Please find the invoice attached.",
                       document=PDF, filename="invoice.pdf", content_type="application/pdf")
    assert recognise_fax(raw) is None


def test_fax_subject_without_document_is_not_a_fax() -> None:
    raw = (b"From: fax@gateway.example\r\nSubject: Fax from 2125550123\r\n"
           b"Message-ID: <x@y>\r\n\r\nno attachment\r\n")
    assert recognise_fax(raw) is None


def test_document_sniffed_by_extension_when_mislabelled() -> None:
    raw = gateway_mail(subject="Fax from 2125550123", body="", document=TIFF,
                       filename="FAX0001.TIF", content_type="application/octet-stream")
    info = recognise_fax(raw)
    assert info is not None and info.document is not None
    assert info.document.content_type == "image/tiff"
