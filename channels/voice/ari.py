"""A thin typed ARI REST client (HTTP through :mod:`channels.voice.ari_http`).

Why not a library: ari-py is Python 2 only; aioari and asyncari download Asterisk's swagger
description on connect and build untyped methods from it (nothing to type-check, nothing works
without a live server); ari-client 0.9 is weeks old and has no reconnect. A contact center uses a
few dozen ARI calls, so they are written out here with typed results, and HTTP failures are mapped
onto the channel error tree once:

- connection refused, timeouts, 5xx -> :class:`TransientChannelError` (retry, Asterisk restarting)
- 404 -> :class:`AriNotFound` (the channel/bridge/recording is gone: usually "caller hung up")
- 409 -> :class:`AriConflict` (e.g. the channel is not in our Stasis app any more)
- other 4xx -> :class:`PermanentChannelError`
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels.base import PermanentChannelError, TransientChannelError
from channels.voice.ari_http import HttpClient, HttpFailure, Response
from channels.voice.events import (
    BridgeInfo,
    ChannelInfo,
    PlaybackInfo,
    RecordingInfo,
    parse_bridge,
    parse_channel,
    parse_playback,
    parse_recording,
)

log = logging.getLogger(__name__)


class AriNotFound(PermanentChannelError):
    code = "ari_not_found"


class AriConflict(PermanentChannelError):
    code = "ari_conflict"


@dataclass(frozen=True, slots=True)
class StoredRecording:
    name: str
    format: str


def _raise_for(resp: Response, what: str) -> None:
    status = resp.status
    if status < 400:
        return
    try:
        detail = str(resp.json().get("message", ""))[:200]
    except ValueError:
        detail = resp.text[:200]
    msg = f"ARI {what}: HTTP {status} {detail}".strip()
    if status == 404:
        raise AriNotFound(msg)
    if status == 409:
        raise AriConflict(msg)
    if status >= 500:
        raise TransientChannelError(msg, code="ari_server_error")
    if status in (401, 403):
        raise PermanentChannelError(msg, code="ari_auth")
    raise PermanentChannelError(msg, code="ari_bad_request")


def _params(**kw: Any) -> dict[str, str]:
    """Drop unset values and render the rest the way ARI's query strings expect."""
    out: dict[str, str] = {}
    for key, value in kw.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


class AriClient:
    """REST half of ARI. One instance per Asterisk; safe to share between tasks."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = HttpClient(self.base_url, user, password, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        """One ARI call; returns decoded JSON (or None for 204) or raises a ChannelError."""
        what = f"{method} {path}"
        try:
            resp = await self._http.request(method, path, params=params, json=json)
        except HttpFailure as exc:
            code = "ari_timeout" if exc.timeout else "ari_unreachable"
            raise TransientChannelError(f"ARI {what}: {exc}", code=code) from exc
        _raise_for(resp, what)
        if resp.status == 204 or not resp.content:
            return None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.content

    # --- asterisk / applications ---------------------------------------------------------

    async def asterisk_info(self) -> dict[str, Any]:
        info = await self.request("GET", "/asterisk/info")
        return dict(info)

    async def application_channel_ids(self, app: str) -> tuple[str, ...]:
        """Channels currently subscribed to ``app``: used to reconcile after a reconnect."""
        data = await self.request("GET", f"/applications/{app}")
        return tuple(str(c) for c in data.get("channel_ids", []))

    # --- channels ------------------------------------------------------------------------

    async def list_channels(self) -> list[ChannelInfo]:
        return [parse_channel(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> ChannelInfo:
        return parse_channel(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def create_channel(
        self,
        endpoint: str,
        app: str,
        *,
        app_args: Sequence[str] = (),
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> ChannelInfo:
        """Create a channel in our app without dialing it yet (then :meth:`dial`)."""
        params = _params(endpoint=endpoint, app=app, appArgs=",".join(app_args),
                         channelId=channel_id, otherChannelId=other_channel_id,
                         originator=originator)
        body = {"variables": dict(variables)} if variables else None
        return parse_channel(await self.request("POST", "/channels/create", params=params,
                                                json=body))

    async def dial(self, channel_id: str, *, caller: str | None = None,
                   ring_timeout: int = 0) -> None:
        """Dial a created channel; progress arrives as ``Dial`` events."""
        await self.request("POST", f"/channels/{channel_id}/dial",
                           params=_params(caller=caller, timeout=ring_timeout or None))

    async def originate(
        self,
        endpoint: str,
        app: str,
        *,
        app_args: Sequence[str] = (),
        channel_id: str | None = None,
        caller_id: str | None = None,
        originator: str | None = None,
        ring_timeout: int = 30,
        variables: Mapping[str, str] | None = None,
    ) -> ChannelInfo:
        """Create a channel and dial it at once (one request); progress arrives as ``Dial``
        events, and the channel enters ``app`` (StasisStart) only once it answered.
        ``originator``: the channel this call is made for (linked id, codecs)."""
        params = _params(endpoint=endpoint, app=app, appArgs=",".join(app_args),
                         channelId=channel_id, callerId=caller_id, originator=originator,
                         timeout=ring_timeout)
        body = {"variables": dict(variables)} if variables else None
        return parse_channel(await self.request("POST", "/channels", params=params, json=body))

    async def play(self, channel_id: str, media: Sequence[str], *,
                   playback_id: str | None = None, lang: str | None = None) -> PlaybackInfo:
        params = _params(media=list(media), playbackId=playback_id, lang=lang)
        data = await self.request("POST", f"/channels/{channel_id}/play", params=params)
        return parse_playback(data)

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def record(self, channel_id: str, name: str, *, fmt: str = "wav",
                     max_duration: int = 0, if_exists: str = "overwrite",
                     beep: bool = False, terminate_on: str = "none") -> RecordingInfo:
        params = _params(name=name, format=fmt, maxDurationSeconds=max_duration,
                         ifExists=if_exists, beep=beep, terminateOn=terminate_on)
        return parse_recording(await self.request("POST", f"/channels/{channel_id}/record",
                                                  params=params))

    async def send_dtmf(self, channel_id: str, dtmf: str, *, duration_ms: int = 100) -> None:
        await self.request("POST", f"/channels/{channel_id}/dtmf",
                           params=_params(dtmf=dtmf, duration=duration_ms))

    async def hold(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/hold")

    async def unhold(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/hold")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh",
                           params=_params(mohClass=moh_class))

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def snoop(self, channel_id: str, app: str, *, spy: str = "both",
                    whisper: str = "none", app_args: Sequence[str] = (),
                    snoop_id: str | None = None) -> ChannelInfo:
        """A snoop channel for supervisor listen (spy) / whisper / barge."""
        params = _params(app=app, spy=spy, whisper=whisper, appArgs=",".join(app_args),
                         snoopId=snoop_id)
        return parse_channel(await self.request("POST", f"/channels/{channel_id}/snoop",
                                                params=params))

    async def get_variable(self, channel_id: str, name: str) -> str:
        data = await self.request("GET", f"/channels/{channel_id}/variable",
                                  params={"variable": name})
        return str(data.get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable",
                           params={"variable": name, "value": value})

    # --- bridges -------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, *, bridge_type: str = "mixing",
                            name: str | None = None) -> BridgeInfo:
        params = _params(type=bridge_type, bridgeId=bridge_id, name=name)
        return parse_bridge(await self.request("POST", "/bridges", params=params))

    async def get_bridge(self, bridge_id: str) -> BridgeInfo:
        return parse_bridge(await self.request("GET", f"/bridges/{bridge_id}"))

    async def list_bridges(self) -> list[BridgeInfo]:
        return [parse_bridge(b) for b in await self.request("GET", "/bridges")]

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_channel(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel",
                           params=_params(channel=list(channel_ids)))

    async def remove_channel(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel",
                           params=_params(channel=list(channel_ids)))

    async def record_bridge(self, bridge_id: str, name: str, *, fmt: str = "wav",
                            if_exists: str = "overwrite") -> RecordingInfo:
        params = _params(name=name, format=fmt, ifExists=if_exists)
        return parse_recording(await self.request("POST", f"/bridges/{bridge_id}/record",
                                                  params=params))

    async def play_bridge(self, bridge_id: str, media: Sequence[str], *,
                          playback_id: str | None = None) -> PlaybackInfo:
        params = _params(media=list(media), playbackId=playback_id)
        return parse_playback(await self.request("POST", f"/bridges/{bridge_id}/play",
                                                 params=params))

    # --- recordings ----------------------------------------------------------------------

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def pause_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/pause")

    async def unpause_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/live/{name}/pause")

    async def get_live_recording(self, name: str) -> RecordingInfo:
        """A recording still in progress (queued, recording or paused); 404 once it ended."""
        return parse_recording(await self.request("GET", f"/recordings/live/{name}"))

    async def get_stored_recording(self, name: str) -> StoredRecording:
        data = await self.request("GET", f"/recordings/stored/{name}")
        return StoredRecording(str(data["name"]), str(data.get("format", "")))

    async def copy_stored_recording(self, name: str, destination: str) -> StoredRecording:
        data = await self.request("POST", f"/recordings/stored/{name}/copy",
                                  params={"destinationRecordingName": destination})
        return StoredRecording(str(data["name"]), str(data.get("format", "")))

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")

    async def fetch_recording_file(self, name: str) -> bytes:
        """The stored recording's bytes (WAV), so the hub can move it into its media store."""
        data = await self.request("GET", f"/recordings/stored/{name}/file")
        if not isinstance(data, bytes):
            raise PermanentChannelError(f"recording {name}: unexpected body",
                                        code="ari_bad_response")
        return data
