"""Per-site configuration of the visitor widget: who may embed it, when agents work, what to ask.

A *site* is one embedding of the widget, identified by its public ``site_key``. The key is not a
secret (it sits in the page's HTML); what protects a site is the origin allow-list, the rate
limits and the fact that a visitor can only ever read its own conversation (guarded by the
secret visitor token). The hub stores these values in its DB and hands them over through
:class:`channels.webchat.stores.SiteDirectory`; tests build them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_ATTACHMENT_TYPES: frozenset[str] = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)


class FieldType(StrEnum):
    """Input kinds a pre-chat or offline form field can have (the widget renders each)."""

    TEXT = "text"
    EMAIL = "email"
    TEL = "tel"
    TEXTAREA = "textarea"
    SELECT = "select"


@dataclass(frozen=True, slots=True)
class FormField:
    """One question of the pre-chat or offline form; ``label`` may be a per-locale mapping."""

    name: str
    type: FieldType = FieldType.TEXT
    label: Mapping[str, str] = field(default_factory=dict)
    required: bool = False
    max_length: int = 200
    options: tuple[str, ...] = ()  # for SELECT

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": str(self.type),
            "label": dict(self.label),
            "required": self.required,
            "max_length": self.max_length,
            "options": list(self.options),
        }


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Weekly opening windows in one time zone; weekday 0 is Monday (``datetime.weekday``).

    An empty ``windows`` mapping means "always open" so a site without hours configured never
    shows the offline form because of them (agent availability still applies).
    """

    timezone: str = "UTC"
    windows: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fail early on a typo, not at the first visitor
        object.__setattr__(self, "windows", MappingProxyType(dict(self.windows)))

    def is_open(self, now: datetime) -> bool:
        if not self.windows:
            return True
        local = now.astimezone(ZoneInfo(self.timezone))
        moment = local.time()
        return any(start <= moment < end for start, end in self.windows.get(local.weekday(), ()))

    @classmethod
    def weekdays(cls, start: str, end: str, timezone: str = "UTC") -> BusinessHours:
        """Monday to Friday, ``start``-``end`` (``"09:00"``-``"17:00"``) in ``timezone``."""
        window = ((time.fromisoformat(start), time.fromisoformat(end)),)
        return cls(timezone=timezone, windows=dict.fromkeys(range(5), window))


@dataclass(frozen=True, slots=True)
class Limits:
    """Abuse limits; each rate is a token bucket (``burst`` at once, ``per_minute`` sustained)."""

    max_text_chars: int = 4000
    max_attachment_bytes: int = 5 * 1024 * 1024
    max_attachments: int = 3
    attachment_types: frozenset[str] = DEFAULT_ATTACHMENT_TYPES
    visitor_burst: int = 10
    visitor_per_minute: int = 30
    ip_burst: int = 30
    ip_per_minute: int = 120
    connect_burst: int = 20
    connect_per_minute: int = 60
    history_page: int = 50


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """Everything the widget channel needs to know about one site key.

    ``allowed_origins`` holds ``scheme://host[:port]`` entries; ``"*"`` allows any origin and a
    leading ``*.`` in the host allows its subdomains. A connection without an ``Origin`` header
    (a non-browser client) is accepted unless ``require_origin`` is set: the allow-list exists
    to stop *other web pages* from using the key inside a visitor's browser.
    """

    site_key: str
    name: str = ""
    allowed_origins: tuple[str, ...] = ("*",)
    require_origin: bool = False
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    prechat_fields: tuple[FormField, ...] = ()
    offline_fields: tuple[FormField, ...] = (
        FormField("name", FieldType.TEXT, {"en": "Name", "fr": "Nom"}, required=True),
        FormField("email", FieldType.EMAIL, {"en": "Email", "fr": "E-mail"}, required=True),
    )
    agent_name: str = "Support"
    agent_avatar_url: str | None = None
    greeting: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return not self.require_origin
        origin = origin.rstrip("/").lower()
        for allowed in self.allowed_origins:
            allowed = allowed.rstrip("/").lower()
            if allowed in ("*", origin):
                return True
            scheme, sep, host = allowed.partition("://*.")
            if sep and origin.startswith(scheme + "://") and origin.endswith("." + host):
                return True
        return False

    def public_view(self, *, online: bool) -> dict[str, Any]:
        """What the widget may know about the site (sent in the ``session`` event)."""
        return {
            "name": self.name,
            "online": online,
            "prechat_fields": [f.to_wire() for f in self.prechat_fields],
            "offline_fields": [f.to_wire() for f in self.offline_fields],
            "agent": {"name": self.agent_name, "avatar_url": self.agent_avatar_url},
            "greeting": dict(self.greeting),
            "limits": {
                "max_text_chars": self.limits.max_text_chars,
                "max_attachment_bytes": self.limits.max_attachment_bytes,
                "max_attachments": self.limits.max_attachments,
                "attachment_types": sorted(self.limits.attachment_types),
            },
        }
