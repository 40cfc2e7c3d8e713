"""The persistent state of the widget channel, behind small protocols the hub implements.

The channel itself keeps no state that must survive a restart: sites, visitors and chat history
live behind these protocols. :mod:`channels.webchat.memory` has in-memory versions for tests and
single-process demos; the hub backs them with its DB:

- :class:`SiteDirectory`: site key -> :class:`~channels.webchat.config.SiteConfig` (cache it; it is
  read on every connect).
- :class:`VisitorStore`: the visitor's secret token -> visitor id. Only a SHA-256 hash of the token
  is ever passed in, so a leaked table does not let anyone impersonate a visitor. Pre-chat answers
  are kept with the visitor so a reload does not ask again.
- :class:`HistoryStore`: what the widget shows after a reload. The channel appends every message
  it acknowledged or delivered; a hub that already records interactions may implement ``append``
  as a no-op and answer ``recent`` from its interaction log instead, as long as it returns the
  same ids the acks and ``message`` events carried.
- :class:`Availability`: whether an agent could answer now (the hub's presence view).
- :class:`SignalSink`: ephemeral visitor signals (typing, delivered/read marks) that must reach
  the agent inbox but are not worth a DB transaction each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from channels.webchat.config import SiteConfig


class AuthorType(StrEnum):
    VISITOR = "visitor"
    AGENT = "agent"
    SYSTEM = "system"


class MarkStatus(StrEnum):
    """Receipt states, in order: a message is *sent* (stored), then *delivered*, then *read*."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Visitor:
    visitor_id: str
    site_key: str
    prechat: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prechat", MappingProxyType(dict(self.prechat)))


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An attachment as history keeps it: bytes inline (memory store) or a URL (hub media)."""

    name: str
    content_type: str
    size: int
    data: bytes | None = None
    url: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.name, "type": self.content_type, "size": self.size}
        if self.url is not None:
            wire["url"] = self.url
        elif self.data is not None:
            wire["data"] = self.data  # sent as a socket.io binary attachment
        return wire


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One message in a visitor's chat, in the shape the widget renders."""

    id: str
    conversation_id: str
    author_type: AuthorType
    text: str
    at: datetime
    author_name: str | None = None
    author_avatar_url: str | None = None
    client_id: str | None = None
    files: tuple[StoredFile, ...] = ()
    status: MarkStatus = MarkStatus.SENT

    def to_wire(self) -> dict[str, Any]:
        author: dict[str, Any] = {"type": str(self.author_type), "name": self.author_name}
        if self.author_avatar_url:
            author["avatar_url"] = self.author_avatar_url
        wire: dict[str, Any] = {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "text": self.text,
            "author": author,
            "at": self.at.isoformat(),
            "status": str(self.status),
        }
        if self.client_id is not None:
            wire["client_id"] = self.client_id
        if self.files:
            wire["attachments"] = [f.to_wire() for f in self.files]
        return wire


@dataclass(frozen=True, slots=True)
class VisitorSignal:
    """A typing indicator or receipt from a visitor, for the hub to forward to the agent.

    ``message_ids`` come from the visitor: the hub must ignore ids outside this visitor's
    conversations before acting on them.
    """

    site_key: str
    visitor_id: str
    kind: str  # "typing" | "delivered" | "read"
    typing: bool = False
    message_ids: tuple[str, ...] = ()


class SiteDirectory(Protocol):
    async def get_site(self, site_key: str, /) -> SiteConfig | None: ...


class VisitorStore(Protocol):
    async def find_visitor(self, site_key: str, token_hash: str, /) -> Visitor | None: ...

    async def create_visitor(self, site_key: str, token_hash: str, /) -> Visitor:
        """Store a new visitor under ``token_hash``; the visitor id is the store's to choose."""
        ...

    async def save_prechat(
        self, site_key: str, visitor_id: str, answers: Mapping[str, str], /
    ) -> None: ...


class HistoryStore(Protocol):
    async def append(self, site_key: str, visitor_id: str, entry: HistoryEntry, /) -> None: ...

    async def recent(
        self, site_key: str, visitor_id: str, /, *, limit: int, before: str | None = None
    ) -> Sequence[HistoryEntry]:
        """Up to ``limit`` entries older than the entry ``before`` (newest when None), oldest
        first."""
        ...

    async def mark(
        self, site_key: str, visitor_id: str, ids: Sequence[str], status: MarkStatus, /
    ) -> None:
        """Raise the status of the given entries (never lower it: read stays read)."""
        ...


class Availability(Protocol):
    async def agents_available(self, site_key: str, /) -> bool: ...


class SignalSink(Protocol):
    async def __call__(self, signal: VisitorSignal, /) -> None: ...
