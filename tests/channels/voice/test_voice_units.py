"""Pure pieces around the state machine: backoff, URLs, IVR config, Inbound construction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.base import AddressKind, ChannelKind, InboundKind, ParseError
from channels.voice import call as sm
from channels.voice.events import CallerId, ChannelInfo
from channels.voice.inbound import call_inbound, caller_address, end_inbound, recording_inbound
from channels.voice.ivr import IvrConfig, Menu, MenuOption, menu_from_dict
from channels.voice.stream import Backoff, events_url

TS = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def caller(number: str, name: str = "") -> ChannelInfo:
    return ChannelInfo("1700000000.7", "PJSIP/caller-7", "Up", CallerId(name, number),
                       CallerId("", ""), "inbound", "100", "Stasis", "contacthub,inbound,100")


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(initial=0.2, factor=2, maximum=1.0)
    delays = [b.next_delay(lambda: 1.0) for _ in range(5)]
    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert Backoff(initial=0.2).next_delay(lambda: 0.0) == 0.1  # jitter keeps at least half
    b.reset()
    assert b.next_delay(lambda: 1.0) == 0.2


def test_events_url() -> None:
    assert events_url("http://127.0.0.1:8088/ari/", "contact hub") == (
        "ws://127.0.0.1:8088/ari/events?app=contact%20hub&subscribeAll=false")
    assert events_url("https://pbx.example/ari", "a").startswith("wss://pbx.example/ari/events")


@pytest.mark.parametrize(
    ("number", "expected"),
    [("+14155550123", "+14155550123"), ("4155550123", "+14155550123"),
     ("0033612345678", "+33612345678"), ("", "anonymous"), ("Anonymous", "anonymous")],
)
def test_caller_address_is_e164(number: str, expected: str) -> None:
    addr = caller_address(caller(number), "US")
    assert addr.kind is AddressKind.PHONE and addr.value == expected


def test_garbage_caller_id_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        caller_address(caller("sip:foo"), "US")
    assert info.value.field == "phone"


def test_call_end_and_recording_inbounds_share_the_call_id() -> None:
    call, _ = sm.new_call("1700000000.7", IvrConfig(menu=None, default_queue="sales"), 0.0)
    sender = caller_address(caller("+14155550123"), "US")
    item = call_inbound(call, caller("+14155550123", "Ann"), sender, channel_id="voice",
                        received_at=TS)
    assert (item.channel, item.kind, item.external_id) == (
        ChannelKind.VOICE, InboundKind.CALL, "1700000000.7")
    assert item.sender_name == "Ann" and item.recipient == "100"
    assert item.metadata["queue"] == "sales" and item.metadata["ivr_path"] == []
    ended, _ = sm.step(call, sm.HangupRequest("caller_left"), 12.5)
    end = end_inbound(ended, sender, channel_id="voice", received_at=TS, abandoned=True,
                      wait_s=12.5)
    assert end.kind is InboundKind.EVENT and end.external_id == "1700000000.7:end"
    assert end.thread_refs == ("1700000000.7",)
    assert end.metadata["event"] == "abandoned" and end.metadata["wait_s"] == 12.5
    rec = recording_inbound(ended, sender, b"RIFF....", channel_id="voice", received_at=TS)
    assert rec.external_id == "1700000000.7:recording"
    assert rec.attachments[0].content_type == "audio/wav"


def test_menu_from_dict_builds_nested_menus() -> None:
    menu = menu_from_dict({
        "prompts": ["sound:demo-congrats"], "fallback_queue": "general", "timeout_s": 4,
        "options": {"1": {"label": "sales", "queue": "sales"},
                    "2": {"label": "support", "submenu": {
                        "prompts": ["sound:x"], "fallback_queue": "support",
                        "options": {"1": {"queue": "billing"}}}}},
    })
    assert menu.timeout_s == 4.0 and menu.options["1"].queue == "sales"
    sub = menu.options["2"].submenu
    assert sub is not None and sub.options["1"].label == "1"


def test_bad_menus_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match="prompts"):
        menu_from_dict({"fallback_queue": "x"})
    with pytest.raises(ValueError, match="not one DTMF digit"):
        Menu("m", (), {"12": MenuOption("a", queue="q")}, fallback_queue="q")
    with pytest.raises(ValueError, match="exactly one"):
        MenuOption("a")
