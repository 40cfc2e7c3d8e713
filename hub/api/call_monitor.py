"""Supervisor listen / whisper / barge on a live call (hub.wiring.voice_monitor does the work).

``{id}`` is the conversation id. Supervisors (and admins) only: everyone else gets 403, agents
must not be able to listen in on each other. Starting rings the supervisor's own phone and
answers once it is picked up (or 409 ``supervisor_noanswer``, ``supervisor_busy``...), so the
request can take up to the line's ring timeout.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from hub.actions.access import load_visible
from hub.api.framework import SUPERVISORS, Api, Context
from hub.errors import ApiError
from hub.wiring.voice_monitor import MONITOR_KEY, VoiceMonitor, Watch

api = Api()

Mode = Literal["listen", "whisper", "barge"]


class MonitorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = "listen"


class MonitorOut(BaseModel):
    conversation_id: str
    monitor_id: str | None
    mode: str
    state: Literal["live", "ended"]


def _monitor(ctx: Context) -> VoiceMonitor:
    mon = ctx.services.extras.get(MONITOR_KEY)
    if not isinstance(mon, VoiceMonitor):
        raise ApiError("no voice channel runs in this process", code="voice_unavailable",
                       status=503)  # fmt: skip
    return mon


def _out(w: Watch) -> MonitorOut:
    s = w.session
    return MonitorOut(conversation_id=w.conversation_id, monitor_id=s.id if s else None,
                      mode=s.mode if s else "", state="live" if s and not s.ended else "ended")


@api.route("POST", "/api/calls/{id}/monitor", roles=SUPERVISORS, body=MonitorIn,
           response=MonitorOut, status=201, tag="voice")  # fmt: skip
async def start_monitor(ctx: Context) -> MonitorOut:
    """Ring your phone and listen to (whisper to, barge into) the conversation's live call."""
    async with ctx.services.sessions() as session:
        conv = await load_visible(session, ctx.user, ctx.path["id"])
    return _out(await _monitor(ctx).start(ctx.user, conv, ctx.body.mode))


@api.route("PUT", "/api/calls/{id}/monitor", roles=SUPERVISORS, body=MonitorIn,
           response=MonitorOut, tag="voice")  # fmt: skip
async def set_monitor_mode(ctx: Context) -> MonitorOut:
    """Switch your monitoring of this call to another mode (listen, whisper, barge)."""
    return _out(await _monitor(ctx).set_mode(ctx.user, ctx.path["id"], ctx.body.mode))


@api.route("GET", "/api/calls/{id}/monitor", roles=SUPERVISORS, response=MonitorOut, tag="voice")
async def get_monitor(ctx: Context) -> MonitorOut:
    """Your live monitoring of this call (404 ``no_monitor`` when you are not monitoring it)."""
    w = _monitor(ctx).current(ctx.user.user_id)
    if w is None or w.conversation_id != ctx.path["id"] or w.session is None:
        raise ApiError("you are not monitoring this call", code="no_monitor", status=404)
    return _out(w)


@api.route("DELETE", "/api/calls/{id}/monitor", roles=SUPERVISORS, response=MonitorOut,
           tag="voice")  # fmt: skip
async def stop_monitor(ctx: Context) -> MonitorOut:
    """Stop monitoring: your phone is hung up, the call goes on."""
    mon = _monitor(ctx)
    w = mon.current(ctx.user.user_id)
    await mon.stop(ctx.user, ctx.path["id"])
    assert w is not None  # stop() raised NotFound otherwise
    return _out(w)
