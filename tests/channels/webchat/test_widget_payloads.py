"""Pure parsing and policy rules of the widget channel: payloads, limits, origins, hours."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.base import ParseError
from channels.webchat.config import BusinessHours, FieldType, FormField, Limits, SiteConfig
from channels.webchat.payloads import (
    WidgetInputError,
    content_matches,
    parse_attachments,
    parse_auth,
    parse_form,
    parse_history,
    parse_message,
    parse_offline,
    parse_receipt,
)
from channels.webchat.ratelimit import RateLimiter
from channels.webchat.stores import MarkStatus

LIMITS = Limits()
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "text",
                    "client_id",
                    "attachments",
                    "name",
                    "type",
                    "data",
                    "page_url",
                    "fields",
                    "ids",
                    "status",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@given(JSON)
def test_any_json_either_parses_or_raises_a_precise_error(payload: Any) -> None:
    try:
        message = parse_message(payload, LIMITS)
    except WidgetInputError as exc:
        assert isinstance(exc, ParseError) and exc.code and str(exc)
    else:
        assert message.client_id and (message.text.strip() or message.attachments)


def test_message_fields() -> None:
    msg = parse_message(
        {"text": "hi", "client_id": "a-1", "page_url": "https://x/" + "p" * 900}, LIMITS
    )
    assert (msg.text, msg.client_id, msg.attachments) == ("hi", "a-1", ())
    assert msg.page_url is not None and len(msg.page_url) == 500


def test_auth_keeps_key_and_drops_a_mangled_token() -> None:
    assert parse_auth({"site_key": "k", "visitor_token": "t" * 43}).visitor_token == "t" * 43
    assert parse_auth({"site_key": "k", "visitor_token": "<script>"}).visitor_token is None
    with pytest.raises(WidgetInputError) as err:
        parse_auth({"site_key": ""})
    assert err.value.code == "bad_site_key" and err.value.field == "site_key"


def test_filenames_are_sanitized() -> None:
    [att] = parse_attachments(
        [{"name": "C:\\dir\\..\\evil\x00\u202e.txt", "type": "text/plain", "data": b"ok"}], LIMITS
    )
    assert att.filename == "evil.txt"
    [att] = parse_attachments(
        [
            {
                "name": "...",
                "type": "text/plain; charset=utf-8",
                "data": base64.b64encode(b"x").decode(),
            }
        ],
        LIMITS,
    )
    assert (att.filename, att.content_type) == ("file", "text/plain")


@pytest.mark.parametrize(
    ("content_type", "body", "ok"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\nrest", True),
        ("image/png", b"GIF89a", False),
        ("image/jpeg", b"\xff\xd8\xff\xe0", True),
        ("image/gif", b"GIF87a...", True),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", True),
        ("image/webp", b"RIFF\x00\x00\x00\x00AVI ", False),
        ("application/pdf", b"%PDF-1.7", True),
        ("application/pdf", b"<html>", False),
        ("text/plain", "héllo".encode(), True),
        ("text/plain", b"\xff\xfe", False),
        ("text/plain", b"a\x00b", False),
    ],
)
def test_content_sniffing(content_type: str, body: bytes, ok: bool) -> None:
    assert content_matches(content_type, body) is ok


def test_oversized_base64_is_refused_before_decoding() -> None:
    limits = Limits(max_attachment_bytes=30)
    with pytest.raises(WidgetInputError) as err:
        parse_attachments([{"name": "a", "type": "text/plain", "data": "QUFB" * 100}], limits)
    assert err.value.code == "attachment_too_large"


FIELDS = (
    FormField("name", required=True, max_length=10),
    FormField("email", FieldType.EMAIL),
    FormField("phone", FieldType.TEL),
    FormField("plan", FieldType.SELECT, options=("free", "pro")),
)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({}, "fields.name"),
        ({"name": "x" * 11}, "fields.name"),
        ({"name": "Al", "email": "not-mail"}, "fields.email"),
        ({"name": "Al", "phone": "call me"}, "fields.phone"),
        ({"name": "Al", "plan": "gold"}, "fields.plan"),
        ({"name": ["Al"]}, "fields.name"),
    ],
)
def test_form_rules(answers: dict[str, Any], field: str) -> None:
    with pytest.raises(WidgetInputError) as err:
        parse_form({"fields": answers}, FIELDS, key="fields")
    assert err.value.field == field


def test_form_keeps_only_configured_fields() -> None:
    answers = parse_form(
        {
            "fields": {
                "name": " Al ",
                "email": "al@example.com",
                "x": "y",
                "phone": "+33 1 23 45 67 89",
                "plan": "pro",
            }
        },
        FIELDS,
        key="fields",
    )
    assert answers == {
        "name": "Al",
        "email": "al@example.com",
        "phone": "+33 1 23 45 67 89",
        "plan": "pro",
    }


def test_offline_needs_text() -> None:
    with pytest.raises(WidgetInputError) as err:
        parse_offline({"client_id": "c", "text": " ", "fields": {"name": "Al"}}, FIELDS, LIMITS)
    assert err.value.field == "text"


def test_receipt_and_history_queries() -> None:
    assert parse_receipt({"ids": ["i1", "i2"], "status": "delivered"}).status is (
        MarkStatus.DELIVERED
    )
    with pytest.raises(WidgetInputError):
        parse_receipt({"ids": ["x"] * 101, "status": "read"})
    assert parse_history(None, LIMITS) == (None, LIMITS.history_page)
    assert parse_history({"before": "i9", "limit": 10}, LIMITS) == ("i9", 10)
    with pytest.raises(WidgetInputError):
        parse_history({"limit": True}, LIMITS)


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        (("*",), "https://any.example", True),
        (("https://shop.example",), "https://shop.example/", True),
        (("https://shop.example",), "https://SHOP.example", True),
        (("https://shop.example",), "https://shop.example.evil.com", False),
        (("https://*.example.org",), "https://a.b.example.org", True),
        (("https://*.example.org",), "https://example.org", False),
        (("https://*.example.org",), "https://evilexample.org", False),
        (("https://*.example.org",), "http://a.example.org", False),
    ],
)
def test_origin_matching(allowed: tuple[str, ...], origin: str, ok: bool) -> None:
    assert SiteConfig("k", allowed_origins=allowed).origin_allowed(origin) is ok


def test_missing_origin_policy() -> None:
    assert SiteConfig("k").origin_allowed(None) is True
    assert SiteConfig("k", require_origin=True).origin_allowed(None) is False


def test_business_hours_follow_the_time_zone() -> None:
    hours = BusinessHours.weekdays("09:00", "17:00", "America/New_York")
    assert hours.is_open(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))  # Mon 09:00 in New York
    assert not hours.is_open(datetime(2026, 11, 23, 13, 59, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))  # 17:00 is closed
    assert BusinessHours().is_open(datetime(2026, 11, 29, 3, 0, tzinfo=UTC))
    with pytest.raises(Exception, match="No time zone"):
        BusinessHours(timezone="Mars/Olympus")


def test_rate_limiter_burst_refill_and_eviction() -> None:
    limiter = RateLimiter(burst=2, per_minute=60, max_keys=2)
    assert limiter.hit("a", 0.0) == 0.0
    assert limiter.hit("a", 0.0) == 0.0
    assert limiter.hit("a", 0.0) == pytest.approx(1.0)
    assert limiter.hit("a", 1.0) == 0.0  # one token back after a second
    limiter.hit("b", 1.0)
    limiter.hit("c", 100.0)  # over max_keys: refilled buckets are dropped, memory stays bounded
    assert len(limiter._buckets) <= 2
    with pytest.raises(ValueError):
        RateLimiter(burst=0, per_minute=1)
