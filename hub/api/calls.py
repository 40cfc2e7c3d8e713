"""Call control from the inbox: see a live call, hold, unhold, hang up.

``{id}`` is the conversation id: the inbox works with conversations and the hub finds the call
(the conversation's latest ``CALL`` item) and the voice channel running it. Controlling a call
is for its assigned agent or a supervisor, like replying. Every request is recorded on the
timeline; the call's end (from any side) then resolves the conversation (hub.wiring.voice_calls).

Click-to-call is not offered: the voice adapter drives inbound calls only (no outbound call flow
to originate an agent leg and then the customer).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from channels.base import ChannelError, PermanentChannelError
from channels.voice import VoiceChannel
from hub.actions.access import load_actionable, load_visible
from hub.api.framework import AGENTS_UP, ALL_STAFF, Api, Context
from hub.db.models import Conversation
from hub.domain import ActorType
from hub.errors import ApiError, Conflict
from hub.wiring.voice import SHARED_KEY
from hub.wiring.voice_calls import VoiceCalls
from hub.wiring.voice_store import record_call_event

api = Api()

Action = Literal["hangup", "hold", "unhold"]


class CallOut(BaseModel):
    conversation_id: str
    call_id: str
    state: str  # ivr, queued, offering, connected, held, ended
    queue: str | None
    ivr_path: list[str]
    digits: str


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


@api.route("GET", "/api/calls/{id}", roles=ALL_STAFF, response=CallOut, tag="voice")
async def get_call(ctx: Context) -> CallOut:
    """The live call of a voice conversation (409 ``no_live_call`` once it ended)."""
    async with ctx.services.sessions() as session:
        conv = await load_visible(session, ctx.user, ctx.path["id"])
    channel, call_id = await _live(ctx, conv)
    return _out(conv, channel, call_id)


async def _control(ctx: Context, action: Action) -> CallOut:
    async with ctx.services.sessions() as session:
        conv = await load_actionable(session, ctx.user, ctx.path["id"])
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
