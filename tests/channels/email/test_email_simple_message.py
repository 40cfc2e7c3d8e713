"""The direct ``Message`` build for plain single-part mail (channels/email/parse.py) gives what
the stdlib's parser gives, and leaves every other shape to it."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.email.parse import _simple_message, message_from_raw

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
_STATE = (
    "_headers",
    "_payload",
    "defects",
    "_unixfrom",
    "_default_type",
    "preamble",
    "epilogue",
    "_charset",
    "policy",
)


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _same(raw: bytes) -> bool:
    """Whether the direct build took ``raw``; when it did, it must equal the parser's."""
    expected = message_from_bytes(raw, policy=compat32)
    got = _simple_message(raw.decode("ascii", "surrogateescape"))
    assert message_from_raw(raw).__dict__.keys() == expected.__dict__.keys()
    if got is None:
        return False
    for name in _STATE:
        assert getattr(got, name) == getattr(expected, name), name
    assert type(got) is Message
    return True


def test_corpus_mails_build_as_the_parser_builds_them() -> None:
    raws = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    taken = sum(_same(raw) for raw in raws) + sum(_same(_crlf(raw)) for raw in raws)
    assert taken >= 10  # the plain ones (as served over IMAP, in CRLF) go the direct way


SIMPLE = (
    b"From: A <a@example.com>\r\nTo: s@example.com\r\nSubject: Hi\r\n"
    b"X-Folded: one\r\n\ttwo\r\n  three\r\nX-Empty:\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nBody\r\n\r\nmore \xc3\xa9\r\n"
)


@pytest.mark.parametrize(
    "raw",
    [
        SIMPLE,
        SIMPLE.replace(b"Content-Type: text/plain", b"Content-Type: text/html"),
        SIMPLE.replace(b"Content-Type: text/plain; charset=utf-8\r\n", b""),
        SIMPLE.replace(b"Subject: Hi", b"Subject: =?utf-8?q?caf=C3=A9?="),
    ],
)
def test_plain_shapes_are_built_directly(raw: bytes) -> None:
    assert _same(raw)


@pytest.mark.parametrize(
    "raw",
    [
        SIMPLE.replace(b"\r\n", b"\n"),  # LF only
        SIMPLE.replace(b"To: s@example.com\r\n", b"To: s@example.com\n"),  # a bare LF
        SIMPLE.replace(b"To: s@example.com\r\n", b"To: s@example.com\r"),  # a bare CR
        b"From a@example.com Mon Jan  1 00:00:00 2024\r\n" + SIMPLE,  # envelope line
        b" folded first\r\n" + SIMPLE,  # continuation before any field
        SIMPLE.replace(b"Subject: Hi", b"Subject: caf\xc3\xa9"),  # 8-bit header
        SIMPLE.replace(b"Subject: Hi", b": no name"),
        SIMPLE.replace(b"Subject: Hi", b"not a header line"),
        SIMPLE.replace(b"text/plain", b"multipart/mixed"),
        SIMPLE.replace(b"text/plain", b"message/rfc822"),
        SIMPLE.replace(b"text/plain", b"message/delivery-status"),
        b"From: a@example.com\r\nSubject: no body",  # no empty line
        b"\r\n\r\nbody only",
    ],
)
def test_other_shapes_are_left_to_the_parser(raw: bytes) -> None:
    assert not _same(raw)


_TEXT = st.text(st.sampled_from(list('aZ:- \t;="<>@.\r\n\xe9')), max_size=12)
# mostly field and continuation lines, so that many blocks are ones the direct build takes
_LINE = st.tuples(
    st.sampled_from(["X-A:", "Subject: ", "Content-Type: text/", " ", "\t", "From ", ":", ""]),
    _TEXT,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINE, max_size=6), st.text(max_size=20))
def test_any_header_block_builds_as_the_parser_builds_it(lines: list[str], body: str) -> None:
    _same(("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8", "surrogateescape"))
