"""Fax channel: fax-to-email gateway mail in (pages, OCR), email-to-fax PDF out."""

from channels.fax.channel import FaxChannel
from channels.fax.config import FaxConfig
from channels.fax.detect import FaxInfo, recognise_fax
from channels.fax.ocr import OcrEngine, OcrError, TesseractOcr
from channels.fax.pdf import text_to_pdf

__all__ = [
    "FaxChannel",
    "FaxConfig",
    "FaxInfo",
    "OcrEngine",
    "OcrError",
    "TesseractOcr",
    "recognise_fax",
    "text_to_pdf",
]
