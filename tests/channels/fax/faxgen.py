"""Generated test faxes: text rendered by Pillow into G3/G4 TIFF pages, wrapped in gateway mails."""

from __future__ import annotations

import io
from email.message import EmailMessage

from PIL import Image, ImageDraw, ImageFont


def fax_page(lines: list[str], *, width: int = 1728, height: int = 1100,
             size: int = 44) -> Image.Image:
    """A 1-bit fax page (1728 px wide, the T.4 line) with ``lines`` of text."""
    page = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=size)
    y = 80
    for line in lines:
        draw.text((100, y), line, fill=0, font=font)
        y += int(size * 1.6)
    return page


def fax_tiff(pages: list[list[str]], *, compression: str = "group4",
             dpi: tuple[int, int] = (204, 196)) -> bytes:
    """A multi-page TIFF as fax machines and HylaFAX store them."""
    images = [fax_page(p) for p in pages]
    if dpi[1] <= 150:  # "normal" resolution: every other scan line, pixels twice as tall
        images = [img.resize((img.width, img.height // 2)) for img in images]
    out = io.BytesIO()
    images[0].save(out, "TIFF", compression=compression, dpi=dpi, save_all=True,
                   append_images=images[1:])
    return out.getvalue()


def gateway_mail(*, subject: str, body: str, document: bytes, filename: str,
                 content_type: str = "image/tiff", headers: dict[str, str] | None = None,
                 sender: str = "fax@gateway.example", message_id: str = "<fax-1@gateway.example>",
                 ) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "fax-inbox@contacthub.test"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Mon, 16 Nov 2026 10:06:00 +0000"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    maintype, _, subtype = content_type.partition("/")
    msg.add_attachment(document, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def hylafax_mail(document: bytes, *, callid: str = "2125550123", pages: int = 2,
                 message_id: str = "<fax-1@gateway.example>") -> bytes:
    body = (
        "fax000000123 (ftp://fax.gateway.example:4559/recvq/fax000000123.tif):\n"
        "Sender: ACME Corp\n"
        f"Pages: {pages}\n"
        "Quality: Fine\n"
        "Size: ISO A4\n"
        "Received: 2026:11:16 10:05:33\n"
        "Time To Receive: 0:42\n"
        "Signal Rate: 14400 bit/s\n"
        "ReceivedOn: ttyIAX0\n"
        f"CallID1: {callid}\n"
    )
    return gateway_mail(subject="facsimile received from ACME Corp", body=body, document=document,
                        filename="fax000000123.tif", message_id=message_id)
