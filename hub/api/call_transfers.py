"""Transfers of a live call from the inbox (hub.wiring.voice_transfer does the work).

``{id}`` is the conversation id; like hold and hang-up, only its assigned agent or a supervisor
may transfer it. ``POST /api/calls/{id}/transfer`` with ``mode`` ``blind`` (agent, queue or
number) returns at once; with ``attended`` (agent or number) it returns once the target answered
(up to the line's ring timeout), then ``.../transfer/complete`` or ``.../transfer/cancel``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.actions.access import load_actionable
from hub.api.framework import AGENTS_UP, Api, Context
from hub.errors import ApiError
from hub.wiring.voice_transfer import TRANSFERS_KEY, VoiceTransfers

api = Api()


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["blind", "attended"] = "blind"
    agent_id: str | None = Field(default=None, max_length=64)
    queue_id: str | None = Field(default=None, max_length=64)
    number: str | None = Field(default=None, min_length=3, max_length=40)


class TransferOut(BaseModel):
    conversation_id: str
    mode: Literal["blind", "attended"]
    # the call's state now: queued or offering (blind: back in the queue for the target, whose
    # phone may already be ringing when this answer is built), consulted (attended, target on
    # the line with the agent), connected (attended completed/cancelled), ended
    state: str


def _transfers(ctx: Context) -> VoiceTransfers:
    found = ctx.services.extras.get(TRANSFERS_KEY)
    if not isinstance(found, VoiceTransfers):
        raise ApiError("no voice channel runs in this process", code="voice_unavailable",
                       status=503)  # fmt: skip
    return found


@api.route("POST", "/api/calls/{id}/transfer", roles=AGENTS_UP, body=TransferIn,
           response=TransferOut, tag="voice")  # fmt: skip
async def transfer(ctx: Context) -> TransferOut:
    """Transfer the call: give exactly one of ``agent_id``, ``queue_id`` or ``number``.

    409 ``no_live_call``, ``bad_call_state`` (not talking), ``agent_unavailable`` (target agent
    not ready), ``no_voice_endpoint``, ``same_agent``, ``outbound_not_configured``,
    ``target_unavailable`` (attended: no answer; the caller stays on hold),
    ``consult_pending``; 422 ``invalid_transfer`` or a bad number; 404 unknown agent or queue.
    """
    body: TransferIn = ctx.body
    service = _transfers(ctx)
    async with ctx.services.sessions() as session:
        conv = await load_actionable(session, ctx.user, ctx.path["id"])
    target = await service.target(conv, kind=body.mode, agent_id=body.agent_id,
                                  queue_id=body.queue_id, number=body.number)  # fmt: skip
    if body.mode == "blind":
        state = await service.blind(ctx.user, conv, target)
    else:
        state = await service.consult(ctx.user, conv, target)
    return TransferOut(conversation_id=conv.id, mode=body.mode, state=state)


async def _finish(ctx: Context, *, complete: bool) -> TransferOut:
    async with ctx.services.sessions() as session:
        conv = await load_actionable(session, ctx.user, ctx.path["id"])
    state = await _transfers(ctx).finish(ctx.user, conv, complete=complete)
    return TransferOut(conversation_id=conv.id, mode="attended", state=state)


@api.route("POST", "/api/calls/{id}/transfer/complete", roles=AGENTS_UP, response=TransferOut,
           tag="voice")  # fmt: skip
async def complete(ctx: Context) -> TransferOut:
    """Attended transfer: join the caller with the consulted target; your leg hangs up."""
    return await _finish(ctx, complete=True)


@api.route("POST", "/api/calls/{id}/transfer/cancel", roles=AGENTS_UP, response=TransferOut,
           tag="voice")  # fmt: skip
async def cancel(ctx: Context) -> TransferOut:
    """Attended transfer: hang up the consulted target and go back to the caller."""
    return await _finish(ctx, complete=False)
