"""Pure parsers: Kannel get-url and DLR, Twilio-compatible inbound and status webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote_from_bytes, urlencode

import pytest

from channels.base import AddressKind, ChannelKind, ParseError
from channels.sms.kannel_parse import decode_text, parse_kannel_dlr, parse_kannel_inbound, parse_udh
from channels.sms.models import ConcatInfo, DeliveryStatus
from channels.sms.twilio_parse import parse_form, parse_twilio_inbound, parse_twilio_status


def kannel_query(**fields: str | bytes) -> bytes:
    """Build a get-url query the way smsbox does (values URL-encoded as bytes)."""
    parts = []
    for name, value in fields.items():
        raw = value if isinstance(value, bytes) else value.encode()
        parts.append(f"{name}={quote_from_bytes(raw, safe='')}")
    return "&".join(parts).encode()


def test_kannel_inbound_basic_fields() -> None:
    query = kannel_query(
        **{"from": "+15551234567"}, to="12345", text="hello world", id="f3c6cd7f-98",
        smsc="FAKE", ts="1795501610", coding="0", charset="UTF-8", udh="",
    )  # fmt: skip
    inbound = parse_kannel_inbound(query, channel_id="sms-main")
    assert inbound.channel is ChannelKind.SMS
    assert inbound.channel_id == "sms-main"
    assert inbound.sender.kind is AddressKind.PHONE
    assert inbound.sender.value == "+15551234567"
    assert inbound.recipient == "12345"  # a short code stays as given
    assert inbound.text == "hello world"
    assert inbound.external_id == "kannel:f3c6cd7f-98"
    assert inbound.received_at == datetime.fromtimestamp(1795501610, UTC)
    assert inbound.metadata["smsc"] == "FAKE"
    assert "concat" not in inbound.metadata


def test_kannel_sender_normalized_with_configured_region() -> None:
    query = kannel_query(**{"from": "0612345678"}, to="0033612000000", text="bonjour")
    inbound = parse_kannel_inbound(query, channel_id="fr", default_region="FR")
    assert inbound.sender.value == "+33612345678"
    assert inbound.recipient == "+33612000000"


def test_kannel_ucs2_and_8bit_text_decoded_from_raw_bytes() -> None:
    ucs2 = parse_kannel_inbound(
        kannel_query(**{"from": "+15551234567"}, text="привет 😀".encode("utf-16-be"),
                     coding="2", charset="UTF-16BE"),
        channel_id="c",
    )  # fmt: skip
    assert ucs2.text == "привет 😀"
    eight_bit = parse_kannel_inbound(
        kannel_query(**{"from": "+15551234567"}, text="héllo €".encode(), coding="1",
                     charset="8-BIT"),
        channel_id="c",
    )  # fmt: skip
    assert eight_bit.text == "héllo €"
    latin = parse_kannel_inbound(
        kannel_query(**{"from": "+15551234567"}, text="né".encode("latin-1"),
                     charset="ISO-8859-1"),
        channel_id="c",
    )  # fmt: skip
    assert latin.text == "né"


def test_undecodable_text_is_kept_and_flagged() -> None:
    query = kannel_query(**{"from": "+15551234567"}, text=b"ok \xff\xfe", charset="UTF-8")
    inbound = parse_kannel_inbound(query, channel_id="c")
    assert inbound.text.startswith("ok ")
    assert inbound.metadata["decode_errors"] is True


def test_external_id_without_kannel_id_is_stable_and_content_bound() -> None:
    base = {"from": "+15551234567", "to": "12345", "ts": "1795501610"}
    first = parse_kannel_inbound(kannel_query(**base, text="same"), channel_id="c")
    again = parse_kannel_inbound(kannel_query(**base, text="same"), channel_id="c")
    other = parse_kannel_inbound(kannel_query(**base, text="different"), channel_id="c")
    assert first.external_id == again.external_id
    assert first.external_id.startswith("kannel:h:")
    assert other.external_id != first.external_id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"to": "12345", "text": "x"}, "from"),
        ({"from": "BANK", "text": "x"}, "from"),
        ({"from": "+15551234567", "coding": "7"}, "coding"),
        ({"from": "+15551234567", "coding": "two"}, "coding"),
        ({"from": "+15551234567", "ts": "yesterday"}, "ts"),
        ({"from": "+15551234567", "udh": b"\x05\x00\x03\x07"}, "udh"),
        ({"from": "+15551234567", "udh": b"\x05\x00\x03\x07\x02\x03"}, "udh"),
    ],
)
def test_kannel_malformed_names_the_field(fields: dict[str, str | bytes], field: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_kannel_inbound(kannel_query(**fields), channel_id="c")
    assert info.value.field == field


def test_udh_concatenation_8_and_16_bit_refs() -> None:
    assert parse_udh(b"\x05\x00\x03\x2a\x03\x02") == ConcatInfo(42, 3, 2, 8)
    assert parse_udh(b"\x06\x08\x04\x12\x34\x02\x01") == ConcatInfo(0x1234, 2, 1, 16)
    # a port-addressing IE first, then the concatenation IE
    assert parse_udh(b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x09\x02\x02") == ConcatInfo(9, 2, 2, 8)
    assert parse_udh(b"\x06\x05\x04\x0b\x84\x23\xf0") is None
    assert parse_udh(b"") is None


def test_concat_part_metadata_from_get_url() -> None:
    query = kannel_query(
        **{"from": "+15551234567"}, text="part one ", udh=b"\x05\x00\x03\x07\x02\x01"
    )
    inbound = parse_kannel_inbound(query, channel_id="c")
    assert inbound.metadata["concat"] == {"ref": 7, "total": 2, "seq": 1, "ref_bits": 8}


def test_decode_text_keeps_split_surrogates_for_joining() -> None:
    encoded = "a😀".encode("utf-16-be")
    head, _ = decode_text(encoded[:4], 2, None)  # 'a' + high surrogate only
    tail, _ = decode_text(encoded[4:], 2, None)
    joined = (head + tail).encode("utf-16-be", "surrogatepass").decode("utf-16-be")
    assert joined == "a😀"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("1", DeliveryStatus.DELIVERED),
        ("2", DeliveryStatus.FAILED),
        ("4", DeliveryStatus.QUEUED),
        ("8", DeliveryStatus.SENT),
        ("16", DeliveryStatus.FAILED),
        ("9", DeliveryStatus.DELIVERED),  # bits OR-ed: the final state wins
    ],
)
def test_kannel_dlr_status_mapping(code: str, status: DeliveryStatus) -> None:
    query = urlencode({"mid": "m1", "status": code, "answer": "ACK/", "to": "+15551234567",
                       "ts": "1795501613"})  # fmt: skip
    report = parse_kannel_dlr(query)
    assert report.status is status
    assert report.message_id == "m1"
    assert report.raw_status == code
    assert report.recipient == "+15551234567"
    assert report.detail == "ACK/"


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=1", "mid"), ("mid=m1", "status"), ("mid=m1&status=32", "status"),
     ("mid=m1&status=x", "status")],
)  # fmt: skip
def test_kannel_dlr_malformed(query: str, field: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_kannel_dlr(query)
    assert info.value.field == field


TWILIO_SID = "SM" + "a" * 32


def test_twilio_inbound_with_media() -> None:
    form = {
        "MessageSid": TWILIO_SID, "From": "+14158675309", "To": "+18005551212",
        "Body": "photo attached", "NumMedia": "2", "NumSegments": "1",
        "MediaUrl0": "https://media.example/a", "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://media.example/b", "MediaContentType1": "image/png",
    }  # fmt: skip
    inbound = parse_twilio_inbound(form, channel_id="tw")
    assert inbound.external_id == f"twilio:{TWILIO_SID}"
    assert inbound.sender.value == "+14158675309"
    assert inbound.recipient == "+18005551212"
    assert inbound.text == "photo attached"
    assert [m["content_type"] for m in inbound.metadata["media"]] == ["image/jpeg", "image/png"]
    assert inbound.metadata["segments"] == 1


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"From": "+14158675309"}, "MessageSid"),
        ({"MessageSid": "bad sid!", "From": "+14158675309"}, "MessageSid"),
        ({"MessageSid": TWILIO_SID}, "From"),
        ({"MessageSid": TWILIO_SID, "From": "+14158675309", "NumMedia": "x"}, "NumMedia"),
        ({"MessageSid": TWILIO_SID, "From": "+14158675309", "NumMedia": "1"}, "MediaUrl0"),
    ],
)
def test_twilio_inbound_malformed(form: dict[str, str], field: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_twilio_inbound(form, channel_id="tw")
    assert info.value.field == field


@pytest.mark.parametrize(
    ("raw", "status"),
    [("queued", DeliveryStatus.QUEUED), ("sending", DeliveryStatus.QUEUED),
     ("sent", DeliveryStatus.SENT), ("delivered", DeliveryStatus.DELIVERED),
     ("undelivered", DeliveryStatus.FAILED), ("failed", DeliveryStatus.FAILED)],
)  # fmt: skip
def test_twilio_status_mapping(raw: str, status: DeliveryStatus) -> None:
    form = {"MessageSid": TWILIO_SID, "MessageStatus": raw, "To": "+14158675309",
            "ErrorCode": "30003" if status is DeliveryStatus.FAILED else ""}  # fmt: skip
    report = parse_twilio_status(form)
    assert report.status is status
    assert report.message_id == TWILIO_SID
    assert report.error_code == ("30003" if status is DeliveryStatus.FAILED else None)


def test_twilio_status_unknown_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        parse_twilio_status({"MessageSid": TWILIO_SID, "MessageStatus": "teleported"})
    assert info.value.field == "MessageStatus"


def test_form_must_be_utf8() -> None:
    with pytest.raises(ParseError) as info:
        parse_form(b"Body=%FF%FE&From=x")
    assert info.value.field == "body"
