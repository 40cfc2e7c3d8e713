"""ARI events as typed values, parsed by pure functions.

Asterisk pushes JSON events over the ``/ari/events`` WebSocket. Everything downstream (the per-call
state machine, reconciliation) works on the frozen dataclasses below, never on raw dicts, so a
malformed or unexpected event is caught here, at the edge, with a :class:`ParseError` naming the
field. Event types we do not act on become :class:`UnknownEvent` rather than errors: Asterisk adds
event types between releases and an older hub must keep running.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.base import ParseError

# --- resources embedded in events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerId:
    name: str
    number: str


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """An ARI Channel resource: ``id`` is Asterisk's unique id, stable for the channel's life."""

    id: str
    name: str
    state: str  # Down, Ring, Ringing, Up, Busy, ...
    caller: CallerId
    connected: CallerId
    context: str = ""
    exten: str = ""
    app_name: str = ""  # dialplan application currently running ("Stasis" while in our app)
    app_data: str = ""


@dataclass(frozen=True, slots=True)
class BridgeInfo:
    id: str
    bridge_type: str
    technology: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlaybackInfo:
    id: str
    media_uri: str
    target_uri: str
    state: str


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A live recording; ``name`` is also the stored recording's name once it finished."""

    name: str
    format: str
    target_uri: str
    state: str
    duration: int | None = None
    cause: str | None = None


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    application: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ChannelEvent(Event):
    channel: ChannelInfo


@dataclass(frozen=True, slots=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...] = ()
    replace_channel: ChannelInfo | None = None


@dataclass(frozen=True, slots=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, slots=True)
class ChannelDestroyed(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True)
class ChannelHold(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelUnhold(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelEnteredBridge(ChannelEvent):
    bridge: BridgeInfo | None = None


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge(ChannelEvent):
    bridge: BridgeInfo | None = None


@dataclass(frozen=True, slots=True)
class BridgeDestroyed(Event):
    bridge: BridgeInfo


@dataclass(frozen=True, slots=True)
class Dial(Event):
    """Progress of a dial: ``dialstatus`` is empty while ringing, then ANSWER/NOANSWER/BUSY/..."""

    peer: ChannelInfo
    dialstatus: str
    caller: ChannelInfo | None = None
    dialstring: str = ""


@dataclass(frozen=True, slots=True)
class PlaybackStarted(Event):
    playback: PlaybackInfo


@dataclass(frozen=True, slots=True)
class PlaybackFinished(Event):
    playback: PlaybackInfo


@dataclass(frozen=True, slots=True)
class RecordingStarted(Event):
    recording: RecordingInfo


@dataclass(frozen=True, slots=True)
class RecordingFinished(Event):
    recording: RecordingInfo


@dataclass(frozen=True, slots=True)
class RecordingFailed(Event):
    recording: RecordingInfo


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """An event type we do not act on; kept so it can be logged and counted."""


AriEvent = Event  # every parsed event derives from Event


# --- parsing ----------------------------------------------------------------------------------


def _obj(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise ParseError(f"{where}.{key} must be an object", field=f"{where}.{key}")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{where}.{key} must be a string", field=f"{where}.{key}")
    return value


def _int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{where}.{key} must be an integer", field=f"{where}.{key}")
    return value


def parse_timestamp(raw: str) -> datetime:
    """ARI writes ``2026-11-24T06:23:11.123+0000``; Python < 3.12 needs the colon in the offset."""
    text = raw.strip()
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParseError(f"bad timestamp {raw[:40]!r}", field="timestamp") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_caller(data: Mapping[str, Any] | None) -> CallerId:
    if data is None:
        return CallerId("", "")
    return CallerId(_str(data, "name", "caller", required=False),
                    _str(data, "number", "caller", required=False))


def parse_channel(data: Mapping[str, Any], where: str = "channel") -> ChannelInfo:
    dialplan = data.get("dialplan")
    dp: Mapping[str, Any] = dialplan if isinstance(dialplan, Mapping) else {}
    caller = data.get("caller")
    connected = data.get("connected")
    return ChannelInfo(
        id=_str(data, "id", where),
        name=_str(data, "name", where, required=False),
        state=_str(data, "state", where, required=False),
        caller=parse_caller(caller if isinstance(caller, Mapping) else None),
        connected=parse_caller(connected if isinstance(connected, Mapping) else None),
        context=_str(dp, "context", f"{where}.dialplan", required=False),
        exten=_str(dp, "exten", f"{where}.dialplan", required=False),
        app_name=_str(dp, "app_name", f"{where}.dialplan", required=False),
        app_data=_str(dp, "app_data", f"{where}.dialplan", required=False),
    )


def parse_bridge(data: Mapping[str, Any]) -> BridgeInfo:
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ParseError("bridge.channels must be a list of ids", field="bridge.channels")
    return BridgeInfo(
        id=_str(data, "id", "bridge"),
        bridge_type=_str(data, "bridge_type", "bridge", required=False),
        technology=_str(data, "technology", "bridge", required=False),
        channels=tuple(channels),
    )


def parse_playback(data: Mapping[str, Any]) -> PlaybackInfo:
    return PlaybackInfo(
        id=_str(data, "id", "playback"),
        media_uri=_str(data, "media_uri", "playback", required=False),
        target_uri=_str(data, "target_uri", "playback", required=False),
        state=_str(data, "state", "playback", required=False),
    )


def parse_recording(data: Mapping[str, Any]) -> RecordingInfo:
    cause = data.get("cause")
    return RecordingInfo(
        name=_str(data, "name", "recording"),
        format=_str(data, "format", "recording", required=False),
        target_uri=_str(data, "target_uri", "recording", required=False),
        state=_str(data, "state", "recording", required=False),
        duration=_int(data, "duration", "recording"),
        cause=cause if isinstance(cause, str) else None,
    )


_CHANNEL_ONLY: dict[str, type[ChannelEvent]] = {
    "StasisEnd": StasisEnd,
    "ChannelStateChange": ChannelStateChange,
    "ChannelHold": ChannelHold,
    "ChannelUnhold": ChannelUnhold,
}


def parse_event(raw: str | bytes | Mapping[str, Any]) -> Event:
    """Turn one WebSocket message into a typed event; raise :class:`ParseError` if malformed."""
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError("event is not JSON", field="event") from exc
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise ParseError("event must be a JSON object", field="event")
    kind = _str(data, "type", "event")
    app = _str(data, "application", "event", required=False)
    ts_raw = data.get("timestamp")
    ts = parse_timestamp(ts_raw) if isinstance(ts_raw, str) else datetime.now(UTC)
    base = (kind, app, ts)

    if kind in _CHANNEL_ONLY:
        return _CHANNEL_ONLY[kind](*base, parse_channel(_obj(data, "channel", "event")))
    if kind == "StasisStart":
        args = data.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ParseError("StasisStart.args must be a list of strings", field="args")
        replace = data.get("replace_channel")
        return StasisStart(
            *base, parse_channel(_obj(data, "channel", "event")), tuple(args),
            parse_channel(replace, "replace_channel") if isinstance(replace, Mapping) else None,
        )
    if kind == "ChannelDtmfReceived":
        digit = _str(data, "digit", "event")
        if len(digit) != 1 or digit not in "0123456789*#ABCD":
            raise ParseError(f"bad DTMF digit {digit[:4]!r}", field="digit")
        return ChannelDtmfReceived(*base, parse_channel(_obj(data, "channel", "event")), digit,
                                   _int(data, "duration_ms", "event") or 0)
    if kind == "ChannelHangupRequest":
        return ChannelHangupRequest(*base, parse_channel(_obj(data, "channel", "event")),
                                    _int(data, "cause", "event"), bool(data.get("soft", False)))
    if kind == "ChannelDestroyed":
        return ChannelDestroyed(*base, parse_channel(_obj(data, "channel", "event")),
                                _int(data, "cause", "event") or 0,
                                _str(data, "cause_txt", "event", required=False))
    if kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        cls = ChannelEnteredBridge if kind == "ChannelEnteredBridge" else ChannelLeftBridge
        return cls(*base, parse_channel(_obj(data, "channel", "event")),
                   parse_bridge(_obj(data, "bridge", "event")))
    if kind == "BridgeDestroyed":
        return BridgeDestroyed(*base, parse_bridge(_obj(data, "bridge", "event")))
    if kind == "Dial":
        caller = data.get("caller")
        return Dial(
            *base, parse_channel(_obj(data, "peer", "event"), "peer"),
            _str(data, "dialstatus", "event", required=False),
            parse_channel(caller, "caller") if isinstance(caller, Mapping) else None,
            _str(data, "dialstring", "event", required=False),
        )
    if kind in ("PlaybackStarted", "PlaybackFinished"):
        pcls = PlaybackStarted if kind == "PlaybackStarted" else PlaybackFinished
        return pcls(*base, parse_playback(_obj(data, "playback", "event")))
    if kind in ("RecordingStarted", "RecordingFinished", "RecordingFailed"):
        rcls = {"RecordingStarted": RecordingStarted, "RecordingFinished": RecordingFinished,
                "RecordingFailed": RecordingFailed}[kind]
        return rcls(*base, parse_recording(_obj(data, "recording", "event")))
    return UnknownEvent(*base)
