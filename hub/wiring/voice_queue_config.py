"""The ``queue_experience`` block of a voice channel row's config (see :mod:`hub.wiring.voice`).

Keys (all optional; unknown keys are an error):

- ``announce_s`` (default 0 = off): seconds between position / estimated-wait announcements
- ``announce_queues``: {IVR queue name: seconds} overriding ``announce_s`` per queue (0: off)
- ``announce_holdtime`` (default true): also say the estimated hold time when known
- ``callback_digit``: a digit 0-9 a waiting caller may press to be called back (default: none)
- ``voicemail_max_s`` (default 120): longest voicemail message
- ``callback_timeout_s`` (default 6): how long the router's callback offer waits for the digit
- ``callback_attempts`` (default 3, 1-10): how often callback work is dialled before it is left
  pending (:mod:`hub.wiring.voice_callbacks`; read by :func:`callback_attempts`, not the IVR)

Whether a caller who waited too long goes to voicemail or is offered a callback is the queue's
``overflow`` (``action: voicemail`` / ``action: callback`` with ``after_s``), decided by the router.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEYS = frozenset({"announce_s", "announce_queues", "announce_holdtime", "callback_digit",
                  "voicemail_max_s", "callback_timeout_s", "callback_attempts"})  # fmt: skip


def _seconds(value: Any, key: str, hi: float) -> float:
    from hub.wiring.voice import VoiceConfigError

    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= hi:
        raise VoiceConfigError(f"queue_experience.{key}", f"must be a number from 0 to {hi:g}")
    return float(value)


def queue_experience(raw: Any) -> dict[str, Any]:
    """IvrConfig keyword arguments from the ``queue_experience`` block (None: defaults)."""
    from hub.wiring.voice import VoiceConfigError

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise VoiceConfigError("queue_experience", "must be a mapping")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise VoiceConfigError(f"queue_experience.{unknown[0]}",
                               f"unknown key (known: {', '.join(sorted(KEYS))})")  # fmt: skip
    out: dict[str, Any] = {}
    if "announce_s" in raw:
        out["announce_s"] = _seconds(raw["announce_s"], "announce_s", 3600)
    if "announce_queues" in raw:
        per = raw["announce_queues"]
        if not isinstance(per, Mapping):
            raise VoiceConfigError("queue_experience.announce_queues",
                                   "must map an IVR queue name to seconds")  # fmt: skip
        out["announce_queues"] = {str(q): _seconds(v, f"announce_queues.{q}", 3600)
                                  for q, v in per.items()}  # fmt: skip
    if "announce_holdtime" in raw:
        if not isinstance(raw["announce_holdtime"], bool):
            raise VoiceConfigError("queue_experience.announce_holdtime", "must be true or false")
        out["announce_holdtime"] = raw["announce_holdtime"]
    if raw.get("callback_digit") is not None:
        digit = str(raw["callback_digit"])
        if len(digit) != 1 or not digit.isdigit():
            raise VoiceConfigError("queue_experience.callback_digit", "must be one digit 0-9")
        out["callback_digit"] = digit
    if "voicemail_max_s" in raw:
        out["voicemail_max_s"] = max(1, int(_seconds(raw["voicemail_max_s"], "voicemail_max_s",
                                                      3600)))  # fmt: skip
    if "callback_attempts" in raw:
        callback_attempts(raw)  # checked here so a bad value stops the row like any other
    if "callback_timeout_s" in raw:
        out["callback_timeout_s"] = max(1.0, _seconds(raw["callback_timeout_s"],
                                                      "callback_timeout_s", 60))  # fmt: skip
    return out


def callback_attempts(raw: Any) -> int:
    """``queue_experience.callback_attempts``: dial attempts for callback work (default 3)."""
    from hub.wiring.voice import VoiceConfigError

    value = raw.get("callback_attempts", 3) if isinstance(raw, Mapping) else 3
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise VoiceConfigError("queue_experience.callback_attempts",
                               "must be a whole number from 1 to 10")  # fmt: skip
    return value
