"""Transfers of a connected call, as pure transitions of the per-call state machine.

- Blind (:class:`RequeueRequest`): the agent's leg hangs up and the bridge goes (its recording is
  finished and reported), the caller is back on music on hold in QUEUED, ready for the hub's next
  :class:`Offer` (the target agent, the queue's next agent, or an external number). The next
  connection gets its own bridge and recording (``-2``, ``-3``, ...).
- Attended: :class:`ConsultRequest` takes the caller out of the bridge onto MOH and rings the
  target on a consult leg (CONSULTING); when it answers it joins the agent in the bridge
  (CONSULTED). :class:`CompleteTransfer` puts the caller back into the bridge and hangs up the
  agent (the target now has the call); :class:`CancelTransfer` (or the target hanging up) hangs up
  the consult leg and reconnects the caller. The agent hanging up while CONSULTED completes the
  transfer, as on a desk phone. The consult leg reuses the agent-leg notices, so the hub waits for
  its answer the same way it waits for an offered agent.
"""

from __future__ import annotations

from dataclasses import replace

from channels.voice import events as ev
from channels.voice.call_queue import next_announcement
from channels.voice.callstate import FAILED_DIAL, Call, CallState, Step, hangup_reason
from channels.voice.commands import (
    ActionFailed,
    AddToBridge,
    AgentAnswered,
    AgentFailed,
    CancelTransfer,
    CompleteTransfer,
    ConsultRequest,
    CreateAgentLeg,
    DestroyBridge,
    DialAgent,
    Hangup,
    Input,
    Output,
    RemoveFromBridge,
    RequeueRequest,
    StartMoh,
    StopMoh,
    Tick,
    Transferred,
)


def _gone(inp: Input, channel: str | None) -> bool:
    return (channel is not None
            and isinstance(inp, ev.StasisEnd | ev.ChannelDestroyed | ev.ChannelHangupRequest)
            and inp.channel.id == channel)


def requeue(call: Call, now: float) -> Step:
    """Blind transfer: agent out, bridge and recording closed, caller back on MOH (QUEUED)."""
    out: list[Output] = []
    if call.agent_channel is not None:
        out.append(Hangup(call.agent_channel))
    if call.bridge_id is not None:
        out.append(DestroyBridge(call.bridge_id))
    old = call.old_recordings
    if call.recording is not None and not call.recording_done:
        old = (*old, call.recording)
    call = replace(call, state=CallState.QUEUED, agent_channel=None, agent_endpoint=None,
                   bridge_id=None, recording=None, recording_done=False, old_recordings=old,
                   announce_id=None)
    call = replace(call, deadline=next_announcement(call, now))
    return call, [*out, StartMoh(call.id, call.config.moh_class)]


def _reconnect(call: Call) -> Step:
    """Back to the caller: consult leg gone, caller off hold and into the bridge."""
    assert call.bridge_id is not None
    out: list[Output] = []
    if call.consult_channel is not None:
        out.append(Hangup(call.consult_channel))
    bridge = call.bridge_id
    call = replace(call, state=CallState.CONNECTED, consult_channel=None, deadline=None)
    return call, [*out, StopMoh(call.id), AddToBridge(bridge, call.id)]


def _consult_failed(call: Call, reason: str) -> Step:
    consult = call.consult_channel or ""
    call = replace(call, state=CallState.HELD, consult_channel=None, deadline=None)
    return call, [Hangup(consult), AgentFailed(consult, reason)]


def _complete(call: Call) -> Step:
    assert call.bridge_id is not None and call.consult_channel is not None
    old = call.agent_channel or ""
    new, bridge = call.consult_channel, call.bridge_id
    call = replace(call, state=CallState.CONNECTED, agent_channel=new, consult_channel=None,
                   agent_endpoint=None)
    return call, [StopMoh(call.id), AddToBridge(bridge, call.id), Hangup(old),
                  Transferred(old, new)]


def transfer_step(call: Call, inp: Input, now: float) -> Step | None:
    """Transfer inputs while CONNECTED, HELD, CONSULTING or CONSULTED; None: not one of ours."""
    state, bridge = call.state, call.bridge_id
    assert bridge is not None
    if state in (CallState.CONNECTED, CallState.HELD):
        if isinstance(inp, RequeueRequest):
            return requeue(call, now)
        if isinstance(inp, ConsultRequest):
            out: list[Output] = []
            if state is CallState.CONNECTED:
                out += [RemoveFromBridge(bridge, call.id),
                        StartMoh(call.id, call.config.moh_class)]
            call = replace(call, state=CallState.CONSULTING, consult_channel=inp.channel,
                           ring_timeout=inp.ring_timeout, deadline=now + inp.ring_timeout)
            return call, [*out, CreateAgentLeg(inp.endpoint, inp.channel, call.id)]
        return None
    if state is CallState.CONSULTING:
        consult = call.consult_channel
        if isinstance(inp, ev.StasisStart) and inp.channel.id == consult:
            return call, [DialAgent(consult, call.agent_channel or call.id,
                                    call.ring_timeout + 5)]
        if isinstance(inp, ev.Dial) and inp.peer.id == consult:
            if inp.dialstatus == "ANSWER":
                call = replace(call, state=CallState.CONSULTED, deadline=None)
                return call, [AddToBridge(bridge, consult), AgentAnswered(consult)]
            if inp.dialstatus in FAILED_DIAL:
                return _consult_failed(call, inp.dialstatus.lower())
            return call, []
        if isinstance(inp, Tick) and call.deadline is not None and now >= call.deadline:
            return _consult_failed(call, "noanswer")
        if _gone(inp, consult):
            return _consult_failed(call, hangup_reason(inp))
        if isinstance(inp, ActionFailed) and isinstance(inp.action, CreateAgentLeg | DialAgent):
            return _consult_failed(call, "originate_failed")
        if isinstance(inp, CancelTransfer):
            consult_id = consult or ""
            call, out = _reconnect(call)
            return call, [*out, AgentFailed(consult_id, "cancelled")]
        return None
    if state is CallState.CONSULTED:
        if isinstance(inp, CompleteTransfer) or _gone(inp, call.agent_channel):
            return _complete(call)
        if isinstance(inp, CancelTransfer) or _gone(inp, call.consult_channel):
            return _reconnect(call)
    return None
