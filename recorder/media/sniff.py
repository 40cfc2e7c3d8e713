"""Content-type sniffing from magic bytes, for media whose type the sender did not state.

Only the types a contact center stores are recognised (call audio, fax pages, common
attachments); anything else is ``application/octet-stream``, which browsers download rather
than render, the safe default for untrusted bytes.
"""

from __future__ import annotations

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3", "audio/webm"),
)


def sniff_content_type(head: bytes) -> str:
    """The content type the first bytes of an object reveal (64 bytes are plenty)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"  # MPEG audio frame sync without an ID3 tag
    for magic, content_type in _SIGNATURES:
        if head.startswith(magic):
            return content_type
    return "application/octet-stream"
