"""HTTP ``Range`` requests (RFC 9110 §14) for serving media with ``206 Partial Content``.

Audio players seek by asking for ``bytes=<start>-``; this module turns the header into one
concrete byte range. Following the RFC, a header the server does not understand (bad syntax, a
unit other than bytes, several ranges) is *ignored* and the whole content is served with 200;
only a well-formed range that lies entirely past the end is an error (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiableError(ValueError):
    """The range starts past the end: answer 416 with ``Content-Range: bytes */<size>``."""

    code = "media_range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for {size} bytes")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` .. ``end`` (inclusive, as in HTTP) of a ``size``-byte object."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header value of the 206 response."""
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` asks for in an object of ``size`` bytes, ``None`` to serve it all.

    Raises :class:`RangeNotSatisfiableError` for a valid range that selects nothing.
    """
    if header is None or "," in header:
        return None
    match = _SPEC_RE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid syntax per RFC 9110: ignore the header
    if start >= size:
        raise RangeNotSatisfiableError(size)
    return ByteRange(start, min(end, size - 1), size)
