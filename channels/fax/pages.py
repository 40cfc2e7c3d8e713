"""Fax documents → page images (PNG) for the inbox and for OCR.

TIFF (G3/G4, multi-page, as HylaFAX and T.38 gateways store faxes) is decoded with Pillow; PDF
is rasterised by poppler's ``pdftoppm`` (Debian ``poppler-utils``) in a subprocess with a time
limit. Both are capped (pages, pixels) so a hostile "fax" cannot exhaust memory. Runs in a worker
thread / subprocess: never on the event loop.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageSequence

MAX_PAGES = 50
MAX_PIXELS_PER_PAGE = 40_000_000  # ~A3 at 600 dpi
PDF_DPI = 150


class RenderError(Exception):
    """The document could not be turned into page images."""


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    mode = "1" if image.mode == "1" else "L"
    image.convert(mode).save(out, "PNG", optimize=False)
    return out.getvalue()


def render_tiff(data: bytes, max_pages: int = MAX_PAGES) -> list[bytes]:
    """Every page of a (multi-page) TIFF as PNG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            pages: list[bytes] = []
            for frame in ImageSequence.Iterator(img):
                if len(pages) >= max_pages:
                    break
                if frame.width * frame.height > MAX_PIXELS_PER_PAGE:
                    raise RenderError(f"page of {frame.width}x{frame.height} pixels is too large")
                page = frame.copy()
                # Fax resolutions are often 204x98 dpi ("normal"): stretch to square pixels.
                dpi = frame.info.get("dpi")
                if isinstance(dpi, tuple) and len(dpi) == 2 and dpi[0] and dpi[1]:
                    ratio = float(dpi[0]) / float(dpi[1])
                    if ratio > 1.5:
                        page = page.resize((page.width, int(page.height * ratio)))
                pages.append(_png(page))
            return pages
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RenderError(f"unreadable TIFF: {exc}") from exc


def render_pdf(data: bytes, max_pages: int = MAX_PAGES, timeout_s: float = 60.0) -> list[bytes]:
    """Every page of a PDF as PNG, via ``pdftoppm``."""
    with tempfile.TemporaryDirectory(prefix="ch-fax-") as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(data)
        binary = shutil.which("pdftoppm")
        if binary is None:
            raise RenderError("pdftoppm not installed (Debian poppler-utils)")
        try:
            subprocess.run(  # noqa: S603 - fixed argv, no shell; the PDF is only a file argument
                [binary, "-png", "-gray", "-r", str(PDF_DPI), "-l", str(max_pages),
                 str(src), str(Path(tmp) / "page")],
                check=True, capture_output=True, timeout=timeout_s,
            )
        except subprocess.CalledProcessError as exc:
            raise RenderError(f"pdftoppm failed: {exc.stderr[:200]!r}") from exc
        except subprocess.TimeoutExpired as exc:
            raise RenderError("pdftoppm timed out") from exc
        files = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [f.read_bytes() for f in files]


def render_pages(data: bytes, content_type: str, max_pages: int = MAX_PAGES) -> list[bytes]:
    """Dispatch on the document type (sniffing the magic bytes, not trusting the label)."""
    if data.startswith(b"%PDF") or (content_type == "application/pdf" and b"%PDF" in data[:1024]):
        return render_pdf(data, max_pages)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return render_tiff(data, max_pages)
    raise RenderError(f"not a TIFF or PDF ({content_type})")
