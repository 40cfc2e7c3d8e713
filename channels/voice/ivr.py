"""IVR menus as configuration: a tree of prompts and DTMF choices ending in a queue.

Prompts are ARI media URIs (``sound:demo-congrats`` plays Asterisk's core sound file). A menu
either routes to a queue, or descends into a sub-menu; every choice taken is kept (label and digit)
so the agent sees how the caller got there (CTI data). Pure values, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class MenuOption:
    """What a key does: go to ``queue`` or play ``submenu``; ``label`` is kept as CTI data."""

    label: str
    queue: str | None = None
    submenu: Menu | None = None

    def __post_init__(self) -> None:
        if (self.queue is None) == (self.submenu is None):
            raise ValueError(f"menu option {self.label!r} needs exactly one of queue or submenu")


@dataclass(frozen=True, slots=True)
class Menu:
    """One IVR level. After ``max_tries`` timeouts or invalid keys the call goes to ``fallback``."""

    name: str
    prompts: tuple[str, ...]
    options: Mapping[str, MenuOption]
    fallback_queue: str
    timeout_s: float = 5.0
    max_tries: int = 3
    invalid_prompts: tuple[str, ...] = ("sound:pm-invalid-option",)

    def __post_init__(self) -> None:
        for key in self.options:
            if len(key) != 1 or key not in "0123456789*#":
                raise ValueError(f"menu {self.name!r}: option key {key!r} is not one DTMF digit")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


@dataclass(frozen=True, slots=True)
class IvrConfig:
    """The call flow: entry menu (``None``: straight to ``default_queue``), hold music class, and
    per-queue whisper prompts the agent hears after answering, before the caller is connected."""

    menu: Menu | None = None
    default_queue: str = "default"
    moh_class: str = "default"
    whisper: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the wait in the queue: position / estimated wait announced every ``announce_s`` seconds
    # (0: never; ``announce_queues`` overrides it per IVR queue name), the caller may press
    # ``callback_digit`` to leave and be called back, voicemail lasts at most ``voicemail_max_s``
    announce_s: float = 0.0
    announce_queues: Mapping[str, float] = field(default_factory=dict)
    announce_holdtime: bool = True
    callback_digit: str | None = None
    callback_timeout_s: float = 6.0
    voicemail_max_s: int = 120
    voicemail_prompts: tuple[str, ...] = ("sound:vm-intro",)
    goodbye_prompts: tuple[str, ...] = ("sound:auth-thankyou", "sound:vm-goodbye")

    def __post_init__(self) -> None:
        object.__setattr__(self, "whisper", MappingProxyType(dict(self.whisper)))
        object.__setattr__(self, "announce_queues", MappingProxyType(dict(self.announce_queues)))
        if self.callback_digit is not None and (len(self.callback_digit) != 1
                                                or not self.callback_digit.isdigit()):
            raise ValueError(f"callback digit {self.callback_digit!r} is not one digit 0-9")
        if self.announce_s < 0 or any(v < 0 for v in self.announce_queues.values()):
            raise ValueError("announcement intervals must be >= 0 seconds")

    def announce_interval(self, queue: str | None) -> float:
        """Seconds between announcements for callers in ``queue`` (0: none)."""
        return float(self.announce_queues.get(queue or "", self.announce_s))


def menu_from_dict(data: Mapping[str, Any], name: str = "main") -> Menu:
    """Build a menu from plain data (YAML/JSON settings); raises ValueError naming the bad key."""
    try:
        raw_options = data.get("options", {})
        options: dict[str, MenuOption] = {}
        for key, opt in raw_options.items():
            label = str(opt.get("label", key))
            if "submenu" in opt:
                options[str(key)] = MenuOption(label, submenu=menu_from_dict(opt["submenu"], label))
            else:
                options[str(key)] = MenuOption(label, queue=str(opt["queue"]))
        return Menu(
            name=str(data.get("name", name)),
            prompts=tuple(str(p) for p in data["prompts"]),
            options=options,
            fallback_queue=str(data["fallback_queue"]),
            timeout_s=float(data.get("timeout_s", 5.0)),
            max_tries=int(data.get("max_tries", 3)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"menu {name!r}: bad or missing field {exc}") from exc
