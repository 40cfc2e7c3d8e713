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

Recordings are always WAV (Asterisk's ``wav`` format: 8 kHz, 16-bit mono, both parties mixed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from channels.voice import IvrConfig, VoiceChannel, VoiceSettings, menu_from_dict
from hub.channel_host import HostContext, Hosted, register
from hub.db.models import ChannelInstance
from hub.wiring.voice_calls import VoiceCalls

log = logging.getLogger(__name__)

SHARED_KEY = "voice.calls"
KNOWN_KEYS = frozenset({
    "ari_url", "ari_user", "ari_password", "app", "menu", "default_queue", "moh_class",
    "whisper", "ring_timeout_s", "default_region", "delete_recordings", "recording_wait_s",
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
        ),
        ring_timeout=int(_number(cfg, "ring_timeout_s", 15, 1, 300)),
        default_region=_text(cfg, "default_region", "US").upper(),
        delete_recordings=delete,
        recording_wait_s=_number(cfg, "recording_wait_s", 30.0, 1.0, 3600.0),
    )


def calls_of(ctx: HostContext) -> VoiceCalls:
    """The one orchestrator of this hub process, created (and subscribed to the bus) once."""
    calls = ctx.shared.get(SHARED_KEY)
    if not isinstance(calls, VoiceCalls):
        calls = VoiceCalls(ctx)
        ctx.shared[SHARED_KEY] = calls
        ctx.extras[SHARED_KEY] = calls  # the calls API finds it here
        if ctx.bus is not None:
            ctx.bus.subscribe(calls.on_event)
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
    channel = VoiceChannel(settings)
    ctx.shared[app_key] = instance.name
    calls = calls_of(ctx)
    calls.add(instance.id, channel)

    async def close() -> None:
        if calls.remove(instance.id) == 0:
            await calls.aclose()
        await channel.aclose()

    return Hosted(channel=channel, close=close)
