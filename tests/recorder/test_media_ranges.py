"""HTTP Range parsing (RFC 9110) and content sniffing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.media import ByteRange, RangeNotSatisfiableError, parse_range, sniff_content_type


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-499", 1000, ByteRange(0, 499, 1000)),
    ("bytes=500-", 1000, ByteRange(500, 999, 1000)),
    ("bytes=-200", 1000, ByteRange(800, 999, 1000)),
    ("bytes=-5000", 1000, ByteRange(0, 999, 1000)),
    ("bytes=900-5000", 1000, ByteRange(900, 999, 1000)),
    ("BYTES = 1 - 2", 10, ByteRange(1, 2, 10)),
    (None, 1000, None),
    ("bytes=0-1,5-6", 1000, None),  # several ranges: serve the whole object
    ("items=0-1", 1000, None),
    ("bytes=5-1", 1000, None),
    ("bytes=-", 1000, None),
    ("bytes=abc", 1000, None),
])
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 10),
                                              ("bytes=0-", 0), ("bytes=-5", 0)])
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError) as err:
        parse_range(header, size)
    assert err.value.content_range == f"bytes */{size}"


def test_content_range_header() -> None:
    assert ByteRange(500, 999, 1000).content_range == "bytes 500-999/1000"
    assert ByteRange(500, 999, 1000).length == 500


@given(size=st.integers(1, 10_000), start=st.integers(0, 20_000),
       end=st.one_of(st.none(), st.integers(0, 20_000)))
def test_range_matches_python_slicing(size: int, start: int, end: int | None) -> None:
    data = bytes(i % 251 for i in range(size))
    header = f"bytes={start}-{'' if end is None else end}"
    try:
        got = parse_range(header, size)
    except RangeNotSatisfiableError:
        assert start >= size
        return
    if end is not None and end < start:
        assert got is None
        return
    assert got is not None
    stop = size if end is None else end + 1
    assert data[got.start:got.end + 1] == data[start:stop]


@pytest.mark.parametrize(("head", "expected"), [
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
    (b"ID3\x04", "audio/mpeg"),
    (b"\xff\xfb\x90", "audio/mpeg"),
    (b"OggS\x00", "audio/ogg"),
    (b"II*\x00\x08", "image/tiff"),
    (b"%PDF-1.7", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"<html>", "application/octet-stream"),
    (b"", "application/octet-stream"),
])
def test_sniff(head: bytes, expected: str) -> None:
    assert sniff_content_type(head) == expected
