"""Call control from the inbox: click-to-call, see a live call, hold, unhold, hang up.

``{id}`` is the conversation id: the inbox works with conversations and the hub finds the call
(the conversation's latest ``CALL`` item) and the voice channel running it. Controlling a call
is for its assigned agent or a supervisor, like replying. Every request is recorded on the
timeline; the call's end (from any side) then resolves the conversation (hub.wiring.voice_calls).

``POST /api/calls`` is click-to-call (hub.wiring.voice_outbound): the agent's phone rings first,
then the customer's; the answer returns at once with the new conversation, and the call's
progress (answered, ended with why) arrives on its timeline. Hold is for inbound calls only.
Supervisor monitoring lives in :mod:`hub.api.call_monitor`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from channels.base import ChannelError, PermanentChannelError
from channels.voice import VoiceChannel
from channels.voice.outbound import OutboundCall
from hub.actions.access import load_actionable, load_visible
from hub.api.framework import AGENTS_UP, ALL_STAFF, Api, Context
from hub.db.models import Conversation
from hub.domain import ActorType
from hub.errors import ApiError, Conflict
from hub.wiring.voice import SHARED_KEY
from hub.wiring.voice_calls import VoiceCalls
from hub.wiring.voice_outbound import OUTBOUND_KEY, VoiceOutbound
from hub.wiring.voice_store import record_call_event

api = Api()

Action = Literal["hangup", "hold", "unhold"]


class CallOut(BaseModel):
    conversation_id: str
    call_id: str
    # inbound: ivr, queued, offering, connected, held, ended;
    # outbound: agent_ringing, customer_ringing, connected, ended
    state: str
    queue: str | None
    ivr_path: list[str]
    digits: str
    direction: Literal["inbound", "outbound"] = "inbound"
    number: str | None = None  # outbound: the customer's E.164 number


class DialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=3, max_length=40)  # any common notation; stored as E.164
    contact_id: str | None = Field(default=None, max_length=64)  # then: one of their numbers
    line: str | None = Field(default=None, max_length=320)  # voice channel name or number


def _outbound(ctx: Context) -> VoiceOutbound:
    out = ctx.services.extras.get(OUTBOUND_KEY)
    if not isinstance(out, VoiceOutbound):
        raise ApiError("no voice channel runs in this process", code="voice_unavailable",
                       status=503)  # fmt: skip
    return out


def _out_call(conv_id: str, call: OutboundCall) -> CallOut:
    return CallOut(conversation_id=conv_id, call_id=call.id, state=call.state.value, queue=None,
                   ivr_path=[], digits="", direction="outbound", number=call.number)  # fmt: skip


@api.route("POST", "/api/calls", roles=AGENTS_UP, body=DialIn, response=CallOut, status=201,
           tag="voice")  # fmt: skip
async def click_to_call(ctx: Context) -> CallOut:
    """Click-to-call: ring your phone, then the customer's; returns the new conversation.

    409 ``no_voice_endpoint`` (you have no phone), ``agent_offline``, ``agent_busy`` (on a call
    or being offered one), ``no_voice_capacity``, ``number_not_of_contact``,
    ``outbound_not_configured``; 422 for a number that is not a phone number; 503 when Asterisk
    is unreachable. Whether the agent and then the customer answered is on the timeline.
    """
    body: DialIn = ctx.body
    conv_id, call = await _outbound(ctx).click_to_call(
        ctx.user, number=body.number, contact_id=body.contact_id, line_name=body.line)
    return _out_call(conv_id, call)


async def _live(ctx: Context, conv: Conversation) -> tuple[VoiceChannel, str]:
    calls = ctx.services.extras.get(SHARED_KEY)
    if not isinstance(calls, VoiceCalls):
        raise ApiError("no voice channel runs in this process", code="voice_unavailable",
                       status=503)  # fmt: skip
    if conv.channel != "voice":
        raise Conflict("this conversation is not a call", code="not_a_call")
    live = await calls.live_call(conv)
    if live is None:
        raise Conflict("the call is over", code="no_live_call")
    return live


def _out(conv: Conversation, channel: VoiceChannel, call_id: str) -> CallOut:
    call = channel.call(call_id)
    if call is None:
        raise Conflict("the call is over", code="no_live_call")
    return CallOut(conversation_id=conv.id, call_id=call_id, state=call.state.value,
                   queue=call.queue, ivr_path=list(call.ivr_path), digits=call.digits)  # fmt: skip


class VoiceLineOut(BaseModel):
    name: str
    connected: bool  # its ARI events stream is up
    outbound: bool  # has an outbound_endpoint: click-to-call, callbacks, external transfers


class VoiceStatusOut(BaseModel):
    connected: bool  # at least one voice line of this process is connected to Asterisk
    lines: list[VoiceLineOut]


@api.route("GET", "/api/voice/status", roles=ALL_STAFF, response=VoiceStatusOut, tag="voice")
async def voice_status(ctx: Context) -> VoiceStatusOut:
    """Whether calls can be controlled here, always 200: the inbox asks this before the call
    endpoints so a hub without a voice line (503 there) shows "voice not connected" quietly."""
    out = ctx.services.extras.get(OUTBOUND_KEY)
    lines = out.lines() if isinstance(out, VoiceOutbound) else []
    items = [VoiceLineOut(name=ln.name, connected=ln.channel.connected.is_set(),
                          outbound=ln.trunk is not None) for ln in lines]  # fmt: skip
    return VoiceStatusOut(connected=any(i.connected for i in items), lines=items)


@api.route("GET", "/api/calls/{id}", roles=ALL_STAFF, response=CallOut, tag="voice")
async def get_call(ctx: Context) -> CallOut:
    """The live call of a voice conversation (409 ``no_live_call`` once it ended)."""
    async with ctx.services.sessions() as session:
        conv = await load_visible(session, ctx.user, ctx.path["id"])
    out = ctx.services.extras.get(OUTBOUND_KEY)
    live = await out.live(conv) if isinstance(out, VoiceOutbound) else None
    if live is not None:
        return _out_call(conv.id, live[1])
    channel, call_id = await _live(ctx, conv)
    return _out(conv, channel, call_id)


async def _control(ctx: Context, action: Action) -> CallOut:
    async with ctx.services.sessions() as session:
        conv = await load_actionable(session, ctx.user, ctx.path["id"])
    out = ctx.services.extras.get(OUTBOUND_KEY)
    if isinstance(out, VoiceOutbound) and await out.live(conv) is not None:
        if action != "hangup":
            raise Conflict("hold is for inbound calls", code="not_supported")
        try:
            return _out_call(conv.id, await out.hangup(ctx.user, conv))
        except PermanentChannelError as exc:
            raise Conflict(str(exc), code=exc.code) from None
    channel, call_id = await _live(ctx, conv)
    try:
        if action == "hold":
            await channel.hold(call_id)
        elif action == "unhold":
            await channel.unhold(call_id)
        else:
            await channel.hangup(call_id)
    except PermanentChannelError as exc:
        raise Conflict(str(exc), code=exc.code) from None
    except ChannelError as exc:  # Asterisk unreachable: try again
        raise ApiError(str(exc), code=exc.code, status=503) from None
    async with ctx.services.sessions() as session, session.begin():
        fresh = await session.get(Conversation, conv.id)
        assert fresh is not None
        event = await record_call_event(
            session, fresh, {"event": action, "call_id": call_id, "by": ctx.user.user_id},
            actor_type=ActorType.AGENT, actor_id=ctx.user.agent_id or ctx.user.user_id,
        )  # fmt: skip
    await ctx.services.bus.publish([event])
    call = channel.call(call_id)
    state = call.state.value if call is not None else "ended"
    out = CallOut(conversation_id=conv.id, call_id=call_id, state=state, queue=None, ivr_path=[],
                  digits="")  # fmt: skip
    if call is not None:
        out = _out(conv, channel, call_id)
    return out


@api.route("POST", "/api/calls/{id}/hold", roles=AGENTS_UP, response=CallOut, tag="voice")
async def hold(ctx: Context) -> CallOut:
    """Put the caller on hold (music on hold); the agent stays on the line."""
    return await _control(ctx, "hold")


@api.route("POST", "/api/calls/{id}/unhold", roles=AGENTS_UP, response=CallOut, tag="voice")
async def unhold(ctx: Context) -> CallOut:
    """Take the caller off hold, back into the bridge with the agent."""
    return await _control(ctx, "unhold")


@api.route("POST", "/api/calls/{id}/hangup", roles=AGENTS_UP, response=CallOut, tag="voice")
async def hangup(ctx: Context) -> CallOut:
    """End the call for both parties; the conversation then resolves."""
    return await _control(ctx, "hangup")
