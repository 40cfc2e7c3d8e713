"""The hook for OCR engines: fax pages and scanned attachments in, searchable text out.

The fax channel renders each page to an image and asks an :class:`OcrEngine` for its text,
which is indexed with the fax; no engine is bundled (the composition root plugs one in, e.g.
Tesseract), and without one a fax is still stored and shown, just not full-text searchable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class OcrError(Exception):
    """The engine failed; ``transient`` tells the caller whether a retry can help."""

    code = "ocr_failed"

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class OcrResult:
    """Recognised text of one image; ``confidence`` in 0..1 when the engine reports one."""

    text: str
    confidence: float | None = None
    language: str | None = None


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the text of one page image (PNG, TIFF, JPEG as bytes)."""

    async def recognize(self, image: bytes, *, content_type: str,
                        languages: tuple[str, ...] = ("eng",)) -> OcrResult:
        """Recognise ``image``; raise :class:`OcrError` on failure."""
        ...
