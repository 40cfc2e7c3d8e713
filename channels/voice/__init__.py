"""Voice: inbound calls through Asterisk's REST interface (ARI); see :mod:`channels.voice.channel`.

Modules by role: ``events`` (pure parsing of ARI events), ``ari`` (typed REST client),
``stream`` (events WebSocket with reconnect), ``ivr`` (menu configuration), ``commands`` and
``call`` (the pure per-call state machine), ``actions`` (actions -> REST calls), ``inbound``
(pure Inbound builders), ``settings`` (settings and errors), ``worker`` (one call's worker),
``reconcile`` (what to do after a reconnect) and ``channel`` (the running :class:`VoiceChannel`).
"""

from channels.voice.channel import VoiceChannel
from channels.voice.ivr import IvrConfig, Menu, MenuOption, menu_from_dict
from channels.voice.settings import AgentUnavailable, CallGone, VoiceSettings

__all__ = [
    "AgentUnavailable",
    "CallGone",
    "IvrConfig",
    "Menu",
    "MenuOption",
    "VoiceChannel",
    "VoiceSettings",
    "menu_from_dict",
]
