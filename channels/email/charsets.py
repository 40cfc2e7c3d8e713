"""Turning the bytes of real mail into text without ever raising.

Mail in the wild lies about its charset: ``us-ascii`` bodies full of 8-bit bytes, ``utf-8``
labels on windows-1252 text, vendor labels Python does not know (``x-user-defined``,
``unicode-1-1-utf-7``...). The rule here follows browsers: map labels to the superset actually
used (latin-1 → windows-1252, gb2312 → gb18030, shift_jis → cp932), try the label strictly, then
UTF-8, then windows-1252 with replacement. The caller learns whether a fallback was taken.
"""

from __future__ import annotations

import codecs
import re
from email.header import Header, decode_header

# Labels whose real-world content is a superset encoding (WHATWG Encoding Standard).
_SUPERSETS = {
    "iso-8859-1": "windows-1252",
    "iso8859-1": "windows-1252",
    "latin1": "windows-1252",
    "latin-1": "windows-1252",
    "iso-8859-9": "windows-1254",
    "iso-8859-11": "windows-874",
    "tis-620": "windows-874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "big5": "big5hkscs",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
_FOLD_RE = re.compile(r"\r?\n[ \t]*")
_SAFE_LABEL = re.compile(r"^[A-Za-z0-9._:+-]{1,40}$")


def canonical_charset(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None when unknown/absent."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not _SAFE_LABEL.match(name):
        return None
    name = _SUPERSETS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, label: str | None) -> tuple[str, bool]:
    """Decode ``data`` declared as ``label``; returns (text, fallback_used). Never raises."""
    name = (label or "").strip().strip("\"'").lower()
    ascii_label = name in ("", "us-ascii", "ascii")
    codec = None if ascii_label else canonical_charset(name)
    if codec is not None:
        text = _try_decode(data, codec)
        if text is not None:
            return text, False
    text = _try_decode(data, "utf-8")
    if text is not None:
        return text, not ascii_label or not data.isascii()
    return data.decode("windows-1252", errors="replace"), True


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except Exception:  # some codecs (utf-7, iso-2022) raise odd errors on junk, not only Unicode*
        return None


def raw_header_text(value: str) -> str:
    """Undo the parser's surrogate escapes (raw 8-bit header bytes) and unfold the lines."""
    if not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value):
        value, _ = decode_bytes(value.encode("ascii", "surrogateescape"), "utf-8")
    if "\n" in value:
        value = _FOLD_RE.sub(" ", value)
    return value.strip()


def decode_rfc2047(value: str | Header | None) -> str:
    """Decode encoded-words (``=?charset?Q/B?...?=``) with the same charset fallbacks as bodies."""
    if value is None:
        return ""
    if isinstance(value, str) and "=?" not in value:
        return " ".join(raw_header_text(value).split())
    text = raw_header_text(str(value)) if isinstance(value, str) else value
    try:
        chunks = decode_header(text)
    except Exception:  # broken base64/qp in an encoded word: keep it verbatim
        chunks = [(str(text), None)]
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            decoded, _ = decode_bytes(chunk, None if charset == "unknown-8bit" else charset)
            out.append(decoded)
    return re.sub(r"\s+", " ", "".join(out)).strip()
