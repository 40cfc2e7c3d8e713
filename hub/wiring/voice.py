"""Voice in the hub: each ``channels`` row of kind ``voice`` is one Stasis app on an Asterisk.

The row's ``address`` is the E.164 number callers dial (ingest matches calls to the row by it, so
it is also what routing rules see as ``address``); its ``config`` says how to reach ARI and how the
call flow goes (keys below). The factory builds a :class:`channels.voice.VoiceChannel` and hands it
to the shared :class:`hub.wiring.voice_calls.VoiceCalls`, which turns the router's offers into
ringing phones (see there).

Config keys (unknown keys are an error, so a typo never silently changes a call flow):

- ``ari_url`` (required): ``http://host:8088/ari``
- ``ari_user`` (required), ``ari_password`` (required; write ``ari_password_env: VAR`` in the
  config file so the secret stays in the environment)
- ``app``: the Stasis application name the dialplan hands calls to (default ``contacthub``); one
  row per app: two rows on the same Asterisk need different apps
- ``menu``: the IVR tree (:func:`channels.voice.menu_from_dict`: ``prompts``, ``options``
  {digit: {label, queue | submenu}}, ``fallback_queue``, ``timeout_s``, ``max_tries``); without
  it callers go straight to ``default_queue``
- ``default_queue`` (default ``default``), ``moh_class`` (default ``default``)
- ``whisper``: {IVR queue name: [media, ...]} played to the agent after answering, before the
  caller is connected (e.g. ``sound:queue-thankyou`` or a recorded queue name)
- ``ring_timeout_s`` (default 15; never longer than the offer's time to live)
- ``default_region`` (default ``US``: how national caller ids are read)
- ``delete_recordings`` (default true: Asterisk's copy goes once the hub stored the WAV),
  ``recording_wait_s`` (default 30)
- ``outbound_endpoint``: click-to-call trunk, a dial string with ``{number}`` (E.164 with ``+``)
  or ``{digits}``, e.g. ``PJSIP/{number}@trunk``; without it the line takes no outbound calls
- ``outbound_ring_timeout_s`` (default 30): how long the customer's phone rings
- ``queue_experience``: announcements, callback digit, voicemail length
  (:func:`hub.wiring.voice_queue_config.queue_experience`); transfers to external numbers use
  ``outbound_endpoint``

Recordings are always WAV (Asterisk's ``wav`` format: 8 kHz, 16-bit mono, both parties mixed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from channels.voice import IvrConfig, VoiceChannel, VoiceSettings, menu_from_dict
from channels.voice.call import CallState
from channels.voice.dialer import Dialer
from channels.voice.snoop import Monitors
from hub.channel_host import HostContext, Hosted, register
from hub.db.models import ChannelInstance, Conversation, Offer
from hub.dispatch.early import early_listeners
from hub.domain import OfferStatus
from hub.events import Event
from hub.wiring.voice_callbacks import CALLBACKS_KEY, VoiceCallbacks
from hub.wiring.voice_calls import VoiceCalls
from hub.wiring.voice_monitor import MONITOR_KEY, VoiceMonitor
from hub.wiring.voice_outbound import OUTBOUND_KEY, Line, VoiceOutbound
from hub.wiring.voice_queue_config import callback_attempts, queue_experience
from hub.wiring.voice_store import call_id_of
from hub.wiring.voice_transfer import transfers_of

log = logging.getLogger(__name__)

SHARED_KEY = "voice.calls"
KNOWN_KEYS = frozenset({
    "ari_url", "ari_user", "ari_password", "app", "menu", "default_queue", "moh_class",
    "whisper", "ring_timeout_s", "default_region", "delete_recordings", "recording_wait_s",
    "outbound_endpoint", "outbound_ring_timeout_s", "queue_experience",
})  # fmt: skip


class VoiceConfigError(ValueError):
    """A voice channel row's config is unusable; ``key`` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config.{key}: {message}")
        self.key = key


def _text(cfg: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = cfg.get(key, default)
    if value is None:
        raise VoiceConfigError(key, "is required")
    if not isinstance(value, str) or not value.strip():
        raise VoiceConfigError(key, "must be a non-empty string")
    return value.strip()


def _number(cfg: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise VoiceConfigError(key, f"must be a number from {lo:g} to {hi:g}")
    return float(value)


def _whisper(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise VoiceConfigError("whisper", "must map an IVR queue name to a list of media URIs")
    out: dict[str, tuple[str, ...]] = {}
    for queue, media in raw.items():
        items = [media] if isinstance(media, str) else media
        if not isinstance(items, list) or not all(isinstance(m, str) and m for m in items):
            raise VoiceConfigError(f"whisper.{queue}", "must be a media URI or a list of them")
        out[str(queue)] = tuple(items)
    return out


def voice_settings(row: ChannelInstance) -> VoiceSettings:
    """The adapter settings of one ``voice`` row; raises :class:`VoiceConfigError`."""
    cfg: Mapping[str, Any] = row.config or {}
    unknown = sorted(set(cfg) - KNOWN_KEYS)
    if unknown:
        raise VoiceConfigError(unknown[0], f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})")
    url = _text(cfg, "ari_url")
    if not url.startswith(("http://", "https://")):
        raise VoiceConfigError("ari_url", "must be an http(s) URL such as http://pbx:8088/ari")
    menu = None
    if cfg.get("menu") is not None:
        if not isinstance(cfg["menu"], Mapping):
            raise VoiceConfigError("menu", "must be a mapping (prompts, options, fallback_queue)")
        try:
            menu = menu_from_dict(cfg["menu"])
        except ValueError as exc:
            raise VoiceConfigError("menu", str(exc)) from None
    delete = cfg.get("delete_recordings", True)
    if not isinstance(delete, bool):
        raise VoiceConfigError("delete_recordings", "must be true or false")
    return VoiceSettings(
        ari_url=url,
        user=_text(cfg, "ari_user"),
        password=_text(cfg, "ari_password"),
        app=_text(cfg, "app", "contacthub"),
        channel_id=row.address,
        ivr=IvrConfig(
            menu=menu,
            default_queue=_text(cfg, "default_queue", "default"),
            moh_class=_text(cfg, "moh_class", "default"),
            whisper=_whisper(cfg.get("whisper", {})),
            **queue_experience(cfg.get("queue_experience")),
        ),
        ring_timeout=int(_number(cfg, "ring_timeout_s", 15, 1, 300)),
        default_region=_text(cfg, "default_region", "US").upper(),
        delete_recordings=delete,
        recording_wait_s=_number(cfg, "recording_wait_s", 30.0, 1.0, 3600.0),
    )


def outbound_settings(row: ChannelInstance) -> tuple[str | None, int]:
    """The click-to-call trunk pattern (None: no outbound calls) and the customer ring time."""
    cfg: Mapping[str, Any] = row.config or {}
    trunk = None
    if cfg.get("outbound_endpoint") is not None:
        trunk = _text(cfg, "outbound_endpoint")
        tech, slash, rest = trunk.partition("/")
        if not slash or not tech or not rest or ("{number}" not in rest
                                                 and "{digits}" not in rest):
            raise VoiceConfigError("outbound_endpoint", "must be a dial string with {number} or "
                                   "{digits}, such as PJSIP/{number}@trunk")  # fmt: skip
    return trunk, int(_number(cfg, "outbound_ring_timeout_s", 30, 1, 300))


def outbound_of(ctx: HostContext) -> VoiceOutbound:
    """Click-to-call and monitoring of this hub process, created once (the APIs find them in
    ``extras``)."""
    out = ctx.shared.get(OUTBOUND_KEY)
    if not isinstance(out, VoiceOutbound):
        out = VoiceOutbound(ctx)
        ctx.shared[OUTBOUND_KEY] = ctx.extras[OUTBOUND_KEY] = out
        ctx.shared[MONITOR_KEY] = ctx.extras[MONITOR_KEY] = VoiceMonitor(ctx, out)
        callbacks = ctx.shared[CALLBACKS_KEY] = VoiceCallbacks(ctx, out)  # accepted -> dialled
        if ctx.bus is not None:
            ctx.bus.subscribe(callbacks.on_event)
    return out


async def rering_restored_offers(ctx: HostContext, channel: VoiceChannel, instance_id: str,
                                 calls: VoiceCalls, *, wait_s: float = 10.0) -> int:
    """After a restart the dispatcher restores live offers without sending them again, so no
    ``offer`` event would ring the agent's phone until the offer expired. Once the channel is
    connected (queued callers adopted), ring each restored offer whose call still waits, for
    what is left of its time to live. Returns how many were rung."""
    await channel.connected.wait()
    dispatcher = ctx.extras.get("dispatcher")
    if dispatcher is None:
        return 0  # another process routes; its restored offers are its own
    async with ctx.sessions() as session:
        rows = (await session.execute(
            select(Offer, Conversation)
            .join(Conversation, Conversation.id == Offer.conversation_id)
            .where(Offer.status == OfferStatus.PENDING.value,
                   Conversation.channel_instance_id == instance_id)
        )).all()  # fmt: skip
        pending = [(o.id, o.agent_id, o.expires_at, c.id, await call_id_of(session, c.id))
                   for o, c in rows]  # fmt: skip
    rung = 0
    for offer_id, agent_id, expires_at, conv_id, call_id in pending:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        view = dispatcher.router.work(conv_id)
        while view is None and loop.time() < deadline:  # the router may still be rebuilding
            await asyncio.sleep(0.05)
            view = dispatcher.router.work(conv_id)
        call = channel.call(call_id or "")
        if (view is None or view.offer_id != offer_id or call is None
                or call.state is not CallState.QUEUED or offer_id in calls.ringing()):
            continue
        log.info("offer %s restored after a restart: ringing agent %s again", offer_id, agent_id)
        await calls.on_event(Event(
            "offer", {"offer_id": offer_id, "conversation_id": conv_id, "channel": "voice",
                      "expires_at": expires_at.isoformat(), "restored": True},
            rooms=(f"agent:{agent_id}",),
        ))  # fmt: skip
        rung += 1
    return rung


def calls_of(ctx: HostContext) -> VoiceCalls:
    """The one orchestrator of this hub process, created (and subscribed to the bus) once."""
    calls = ctx.shared.get(SHARED_KEY)
    if not isinstance(calls, VoiceCalls):
        calls = VoiceCalls(ctx)
        ctx.shared[SHARED_KEY] = calls
        ctx.extras[SHARED_KEY] = calls  # the calls API finds it here
        if ctx.bus is not None:
            ctx.bus.subscribe(calls.on_event)
        early_listeners(ctx.extras).append(calls.on_early_offer)  # ring as the router decides
    return calls


@register("voice")
async def build_voice(instance: ChannelInstance, ctx: HostContext) -> Hosted:
    settings = voice_settings(instance)
    app_key = f"voice.app:{settings.ari_url.rstrip('/')}:{settings.app}"
    if app_key in ctx.shared:
        raise VoiceConfigError(
            "app",
            f"Stasis app {settings.app!r} on that Asterisk is already used by channel "
            f"{ctx.shared[app_key]}; give each voice channel its own app",
        )
    trunk, customer_ring = outbound_settings(instance)
    channel = VoiceChannel(settings)
    ctx.shared[app_key] = instance.name
    calls = calls_of(ctx)
    calls.add(instance.id, channel)
    line = Line(instance.id, instance.name, instance.address, instance.queue_id, channel,
                Dialer(channel), Monitors(channel), trunk, customer_ring,
                callback_attempts((instance.config or {}).get("queue_experience")))  # fmt: skip
    outbound_of(ctx).add(line)
    transfers = transfers_of(ctx, calls, outbound_of(ctx))

    async def rering_guarded() -> None:
        try:
            await channel.connected.wait()
            await outbound_of(ctx).resolve_lost(line)
            await rering_restored_offers(ctx, channel, instance.id, calls)
        except Exception:
            log.exception("resuming %s after a start failed", instance.name)

    rering = asyncio.create_task(rering_guarded(), name=f"voice-rering-{instance.name}")

    async def close() -> None:
        rering.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await rering
        outbound_of(ctx).remove(instance.id)
        await line.monitors.aclose()
        await line.dialer.aclose()
        if calls.remove(instance.id) == 0:
            with contextlib.suppress(ValueError):
                early_listeners(ctx.extras).remove(calls.on_early_offer)
            await transfers.aclose()
            callbacks = ctx.shared.get(CALLBACKS_KEY)
            if isinstance(callbacks, VoiceCallbacks):
                await callbacks.aclose()
            await calls.aclose()
        await channel.aclose()

    return Hosted(channel=channel, close=close)
