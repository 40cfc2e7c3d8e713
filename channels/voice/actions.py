"""Executes the state machine's actions against ARI.

Kept apart from the state machine so that stays pure, and from the channel so the mapping from
action to REST call is in one short place. Clean-up actions (hang up, stop MOH or playback,
destroy the bridge) treat "not found" as done: the thing is already gone, which is what we wanted.
"""

from __future__ import annotations

import contextlib

from channels.voice import call as sm
from channels.voice.ari import AriClient, AriConflict, AriNotFound


async def execute(ari: AriClient, app: str, action: sm.Action) -> None:
    """Perform one action; raises a ChannelError subclass when it could not be done."""
    match action:
        case sm.Answer(channel):
            await ari.answer(channel)
        case sm.Play(channel, media, playback_id):
            await ari.play(channel, media, playback_id=playback_id)
        case sm.StartMoh(channel, moh_class):
            await ari.start_moh(channel, moh_class)
        case sm.CreateAgentLeg(endpoint, channel, call_id):
            await ari.create_channel(endpoint, app, app_args=("agent", call_id),
                                     channel_id=channel)
        case sm.OriginateAgent(endpoint, channel, call_id, ring_timeout, caller_id):
            await ari.originate(endpoint, app, app_args=("agent", call_id), channel_id=channel,
                                caller_id=caller_id or None, originator=call_id,
                                ring_timeout=ring_timeout)
        case sm.DialAgent(channel, caller, ring_timeout):
            await ari.dial(channel, caller=caller, ring_timeout=ring_timeout)
        case sm.Bridge(bridge_id, channels):
            await ari.create_bridge(bridge_id, bridge_type="mixing", name=bridge_id)
            await ari.add_channel(bridge_id, channels)
        case sm.RecordBridge(bridge_id, name):
            await ari.record_bridge(bridge_id, name)
        case sm.AddToBridge(bridge_id, channel):
            await ari.add_channel(bridge_id, [channel])
        case sm.RemoveFromBridge(bridge_id, channel):
            await ari.remove_channel(bridge_id, [channel])
        case sm.StopPlayback(playback_id):
            with contextlib.suppress(AriNotFound):
                await ari.stop_playback(playback_id)
        case sm.StopMoh(channel):
            with contextlib.suppress(AriNotFound, AriConflict):
                await ari.stop_moh(channel)
        case sm.Hangup(channel, reason):
            with contextlib.suppress(AriNotFound):
                await ari.hangup(channel, reason)
        case sm.RecordCaller(channel, name, max_s):
            await ari.record(channel, name, fmt="wav", max_duration=max_s, beep=True,
                             terminate_on="#")
        case sm.DestroyBridge(bridge_id):
            with contextlib.suppress(AriNotFound):
                await ari.destroy_bridge(bridge_id)
