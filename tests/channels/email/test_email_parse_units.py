"""Unit tests of the pure parsing helpers, plus a fuzz test of parse_email's totality."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import ChannelKind, ParseError
from channels.email.charsets import canonical_charset, decode_bytes, decode_rfc2047
from channels.email.htmlsafe import html_to_text, sanitize_html
from channels.email.parse import parse_email
from channels.email.quotes import split_quotes
from channels.email.refs import thread_index_ref
from channels.email.tokens import (
    parse_ticket_tokens,
    render_ticket_token,
    strip_reply_prefixes,
    subject_with_token,
)


def test_ticket_token_round_trip_and_rejects_unsafe_ids() -> None:
    token = render_ticket_token("a1B2-c_3")
    assert token == "[#CH-a1B2-c_3]"
    assert parse_ticket_tokens(f"Re: hello {token} and [#CH-9] {token}") == ("a1B2-c_3", "9")
    assert parse_ticket_tokens("no token [#XY-1] [CH-2]") == ()
    with pytest.raises(ValueError):
        render_ticket_token("bad id]")


def test_subject_with_token_adds_one_re_and_one_token() -> None:
    assert subject_with_token("AW: Re: Invoice [#CH-7]", "7") == "Re: Invoice [#CH-7]"
    assert subject_with_token(None, "7") == "[#CH-7]"
    assert subject_with_token("Invoice", "7", reply=False) == "Invoice [#CH-7]"
    assert strip_reply_prefixes("Fwd: RE[2]: SV: x") == "x"


@pytest.mark.parametrize(
    ("label", "codec"),
    [("ISO-8859-1", "cp1252"), ("gb2312", "gb18030"), ("Shift_JIS", "cp932"),
     ('"utf8"', "utf-8"), ("x-nonsense", None), ("bad label!", None), (None, None)],
)
def test_canonical_charset(label: str | None, codec: str | None) -> None:
    assert canonical_charset(label) == codec


def test_decode_bytes_never_raises_and_flags_fallbacks() -> None:
    assert decode_bytes(b"plain", None) == ("plain", False)
    assert decode_bytes("ü".encode(), None) == ("ü", True)  # unlabelled 8-bit is a guess
    assert decode_bytes("ü".encode(), "utf-8") == ("ü", False)
    assert decode_bytes("ü".encode("latin-1"), None) == ("ü", True)
    assert decode_bytes(b"+ZeVnLIqe-", "utf-7") == ("日本語", False)
    assert decode_bytes(b"\xff\xfe\x00", "utf-16-le")[0]  # odd bytes: decoded somehow
    assert decode_bytes(b"+\xff-", "utf-7")[1] is True


def test_rfc2047_mixed_and_broken_words() -> None:
    assert decode_rfc2047("=?utf-8?q?a?= =?utf-8?q?b?= c") == "ab c"
    assert decode_rfc2047("=?x-unknown?q?caf=E9?=") == "café"
    assert decode_rfc2047(None) == ""


def test_sanitizer_blocks_remote_loads_unless_allowed() -> None:
    src = '<img src="https://cdn.example/a.png"><img src="CID:x@y"><a href="cid:z">z</a>'
    safe, blocked = sanitize_html(src)
    assert blocked == 1 and "cdn.example" not in safe and 'src="CID:x@y"' in safe
    assert 'href="cid' not in safe
    allowed, blocked = sanitize_html(src, allow_remote_images=True)
    assert blocked == 0 and "https://cdn.example/a.png" in allowed


def test_html_to_text_quotes_and_skips_invisible() -> None:
    text = html_to_text(
        "<style>p{}</style><p>Hi&nbsp;there</p><blockquote>old<br>older</blockquote>"
    )
    assert text == "Hi there\n\n> old\n> older"


def test_split_quotes_keeps_interleaved_replies_as_new_text() -> None:
    interleaved = "> question 1\nanswer 1\n> question 2\nanswer 2\n"
    assert split_quotes(interleaved).new == interleaved.strip()
    only_quote = "> everything quoted\n> here"
    assert split_quotes(only_quote).new == only_quote  # never an empty message
    bare_forward = "---------- Forwarded message ---------\nFrom: a\n\nthe content"
    split = split_quotes(bare_forward)
    assert split.new == bare_forward and split.forwarded


def test_thread_index_needs_22_bytes() -> None:
    assert thread_index_ref("AAEC") is None
    assert thread_index_ref("!!notbase64!!") is None


def test_parse_rejects_empty_and_oversize() -> None:
    with pytest.raises(ParseError) as info:
        parse_email(b"  \r\n", channel_id="x")
    assert info.value.field == "message"
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg.set_content("x" * 2000)
    from channels.email.parse import ParseOptions

    with pytest.raises(ParseError) as info:
        parse_email(msg.as_bytes(), channel_id="x", options=ParseOptions(max_message_bytes=1000))
    assert info.value.field == "size"


def test_enormous_body_is_truncated_and_flagged() -> None:
    from channels.email.parse import ParseOptions

    raw = b"From: a@example.com\nMessage-ID: <big@x>\n\n" + b"word " * 50_000
    inbound = parse_email(raw, channel_id="s", options=ParseOptions(max_body_chars=1000))
    assert len(inbound.text) <= 1000 and inbound.metadata["body_truncated"] is True


def test_mail_from_our_own_address_is_never_new_work() -> None:
    from channels.email.parse import ParseOptions

    raw = b"From: Support <SUPPORT@contacthub.test>\nMessage-ID: <own@x>\n\nour reply copy\n"
    inbound = parse_email(raw, channel_id="s",
                          options=ParseOptions(our_addresses=("support@contacthub.test",)))
    assert inbound.auto_generated and inbound.metadata["auto_kind"] == "own"


def test_parse_as_fax_channel_kind() -> None:
    raw = b"From: a@example.com\nMessage-ID: <k@x>\n\nhello\n"
    assert parse_email(raw, channel_id="f", channel=ChannelKind.FAX).channel is ChannelKind.FAX


_HEADER_LINES = st.sampled_from([
    b"From: a@example.com", b"From: =?utf-8?b?!!?= <b@example.com>", b"Subject: =?bogus?q?x?=",
    b"Content-Type: multipart/mixed; boundary=\"b\"", b"Content-Type: text/html; charset=\xff",
    b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
    b"Message-ID: <<<>>>", b"References: <a@b> <", b"Thread-Index: ====", b"Return-Path: <>",
    b"Content-Disposition: attachment; filename*=bogus''%ZZ", b"Date: Mon, 99 Foo 99999",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=st.lists(_HEADER_LINES, max_size=8), body=st.binary(max_size=400),
       tail=st.lists(st.sampled_from([b"--b", b"--b--", b"Content-Type: text/plain", b"",
                                      b"=E9=", b"<script>x</script>"]), max_size=10))
def test_parse_email_is_total(headers: list[bytes], body: bytes, tail: list[bytes]) -> None:
    raw = b"\n".join([*headers, b"", body, *tail])
    try:
        inbound = parse_email(raw, channel_id="fuzz")
    except ParseError as exc:
        assert exc.field
    else:
        assert inbound.external_id
        assert "<script" not in (inbound.html or "")


@pytest.mark.parametrize("value", [
    "Ana <ana@example.com>", '"Smith, John" <John@Example.com>', "bob@example.com",
    "<carol@example.com>", "=?utf-8?q?Zo=C3=AB?= <zoe@example.com>", "a@x.com, b@y.com",
    "dave@example.com (Dave)", "Group: e@x.com, f@y.com;", '"odd<name>" <g@x.com>',
])
def test_address_fast_path_agrees_with_the_stdlib(value: str) -> None:
    from email.utils import getaddresses

    from channels.addresses import normalize_email
    from channels.email.charsets import decode_rfc2047
    from channels.email.parse import _addresses

    expected = [(decode_rfc2047(n).strip().strip('"').strip(), normalize_email(a))
                for n, a in getaddresses([value]) if a]
    assert _addresses([value]) == expected
