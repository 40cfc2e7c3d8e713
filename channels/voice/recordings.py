"""Asking ARI how a recording ended, for when its ``RecordingFinished`` never arrives.

A bridge recording's events reach our app only through the bridge: Asterisk records with a
``Recorder`` channel in the bridge and forwards that channel's messages to the bridge's topic,
which the app is subscribed to. When the bridge is destroyed the app's subscription to it ends
(``BridgeDestroyed``). A call's end hangs up both legs and destroys the bridge at once; the
recorder, kicked out of the bridge, finishes its file on its own thread, and when that is later
than the bridge's destruction its ``RecordingFinished`` (and sometimes its ``RecordingStarted``)
goes nowhere. Measured against the test Asterisk 22: 1 call in 60 lost its event through the
channel, 2 in 40 on a busy machine, though the file was always stored. Events are also missed
while the events WebSocket is down (the app is inactive, e.g. across a hub restart).

So an ended call that waited ``recording_check_s`` for a recording asks ARI
(:func:`settle`): a recording stays in ``GET /recordings/live/{name}`` from the moment it was
requested until Asterisk has finished writing it (and published its end); after that the file
is in ``GET /recordings/stored/{name}`` unless the recording failed.
"""

from __future__ import annotations

import logging

from channels.base import ChannelError
from channels.voice.ari import AriClient, AriNotFound
from channels.voice.commands import RecordingSettled
from channels.voice.settings import VoiceSettings

log = logging.getLogger(__name__)


def next_check_s(settings: VoiceSettings, ended_at: float, now: float) -> float:
    """How long an ended call waits for a recording event before asking ARI (:func:`settle`):
    ``recording_check_s``, never past ``recording_wait_s`` after the end."""
    left = ended_at + settings.recording_wait_s - now
    return max(0.0, min(settings.recording_check_s, left))


async def settle(ari: AriClient, name: str) -> RecordingSettled | None:
    """How recording ``name`` ended, or None while it is still live (or ARI cannot say now)."""
    try:
        await ari.get_live_recording(name)
        return None
    except AriNotFound:
        pass
    except ChannelError as exc:
        log.warning("recording %s: live state unknown: %s", name, exc)
        return None
    try:
        await ari.get_stored_recording(name)
    except AriNotFound:
        return RecordingSettled(name, stored=False)
    except ChannelError as exc:
        log.warning("recording %s: stored state unknown: %s", name, exc)
        return None
    return RecordingSettled(name, stored=True)
