"""Web chat: the ``/widget`` socket.io namespace the embeddable visitor widget talks to.

See :mod:`channels.webchat.namespace` for the theory of operation and ``docs/widget-protocol.md``
for the wire protocol.
"""

from channels.webchat.config import BusinessHours, FieldType, FormField, Limits, SiteConfig
from channels.webchat.namespace import WebchatChannel, token_hash
from channels.webchat.stores import (
    Availability,
    HistoryEntry,
    HistoryStore,
    MarkStatus,
    SignalSink,
    SiteDirectory,
    Visitor,
    VisitorSignal,
    VisitorStore,
)

__all__ = [
    "Availability",
    "BusinessHours",
    "FieldType",
    "FormField",
    "HistoryEntry",
    "HistoryStore",
    "Limits",
    "MarkStatus",
    "SignalSink",
    "SiteConfig",
    "SiteDirectory",
    "Visitor",
    "VisitorSignal",
    "VisitorStore",
    "WebchatChannel",
    "token_hash",
]
