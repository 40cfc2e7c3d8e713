"""A minimal PDF writer for replies by fax: plain text on A4 pages, nothing else.

Fax gateways accept PDF attachments on their email-to-fax address. A reply is only text, so a
hand-written PDF 1.4 (one Type1 Helvetica font in WinAnsiEncoding, one content stream per page,
a correct xref table) is enough and avoids a dependency: about a hundred lines, readable by
poppler, Ghostscript and every gateway's converter. Characters outside windows-1252 print as
``?`` (the standard 14 fonts carry no others).
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN = 56
FONT_SIZE = 11
LEADING = 14
WRAP_CHARS = 88
LINES_PER_PAGE = (PAGE_H - 2 * MARGIN) // LEADING


def _pdf_string(text: str) -> str:
    """A PDF literal string in WinAnsi: escape delimiters, octal-escape non-ASCII bytes."""
    out: list[str] = []
    for byte in text.encode("cp1252", errors="replace"):
        ch = chr(byte)
        if ch in "\\()":
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return "(" + "".join(out) + ")"


def _lines(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        wrapped = textwrap.wrap(paragraph.expandtabs(4), WRAP_CHARS, break_long_words=True,
                                replace_whitespace=False, drop_whitespace=True)
        lines.extend(wrapped or [""])
    return lines


def text_to_pdf(text: str, *, header: str | None = None, title: str | None = None,
                now: datetime | None = None) -> bytes:
    """Render ``text`` (with an optional bold-less header line block) into a PDF document."""
    lines = ([*_lines(header), ""] if header else []) + _lines(text)
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, max(len(lines), 1), LINES_PER_PAGE)]
    objects: list[bytes] = []

    def add(body: str | bytes) -> int:
        objects.append(body.encode("latin-1") if isinstance(body, str) else body)
        return len(objects)

    catalog = add("")  # placeholders, filled once the page ids are known
    pages_id = add("")
    font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
               "/Encoding /WinAnsiEncoding >>")
    stamp = (now or datetime.now(UTC)).strftime("D:%Y%m%d%H%M%SZ")
    info = add(f"<< /Producer (contacthub) /CreationDate ({stamp})"
               + (f" /Title {_pdf_string(title)}" if title else "") + " >>")
    page_ids: list[int] = []
    for index, page_lines in enumerate(pages, start=1):
        ops = [f"BT /F1 {FONT_SIZE} Tf {LEADING} TL {MARGIN} {PAGE_H - MARGIN} Td"]
        ops.extend(f"{_pdf_string(line)} Tj T*" for line in page_lines)
        ops.append("ET")
        if len(pages) > 1:
            ops.append(f"BT /F1 9 Tf {PAGE_W - MARGIN - 40} {MARGIN // 2} Td "
                       f"{_pdf_string(f'{index}/{len(pages)}')} Tj ET")
        stream = "\n".join(ops).encode("latin-1")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(add(
            f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
        ))
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objects[pages_id - 1] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += (b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, catalog, info, xref))
    return bytes(out)
