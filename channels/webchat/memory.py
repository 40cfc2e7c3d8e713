"""In-memory implementations of the widget channel's stores (tests, demos, one process only).

Everything here is lost on restart; the hub backs the same protocols with its DB.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from channels.webchat.config import SiteConfig
from channels.webchat.stores import HistoryEntry, MarkStatus, Visitor, VisitorSignal

_RANK = {MarkStatus.SENT: 0, MarkStatus.DELIVERED: 1, MarkStatus.READ: 2}


class MemorySites:
    def __init__(self, *sites: SiteConfig) -> None:
        self.sites = {site.site_key: site for site in sites}

    async def get_site(self, site_key: str, /) -> SiteConfig | None:
        return self.sites.get(site_key)


class MemoryVisitors:
    def __init__(self) -> None:
        self._by_token: dict[tuple[str, str], Visitor] = {}

    async def find_visitor(self, site_key: str, token_hash: str, /) -> Visitor | None:
        return self._by_token.get((site_key, token_hash))

    async def create_visitor(self, site_key: str, token_hash: str, /) -> Visitor:
        visitor = Visitor(visitor_id="v_" + secrets.token_hex(8), site_key=site_key)
        self._by_token[(site_key, token_hash)] = visitor
        return visitor

    async def save_prechat(
        self, site_key: str, visitor_id: str, answers: Mapping[str, str], /
    ) -> None:
        for key, visitor in self._by_token.items():
            if key[0] == site_key and visitor.visitor_id == visitor_id:
                self._by_token[key] = replace(visitor, prechat=answers)


class MemoryHistory:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list[HistoryEntry]] = defaultdict(list)

    async def append(self, site_key: str, visitor_id: str, entry: HistoryEntry, /) -> None:
        """Idempotent by entry id: a retried send replaces its earlier copy."""
        entries = self.entries[(site_key, visitor_id)]
        for i, existing in enumerate(entries):
            if existing.id == entry.id:
                entries[i] = entry
                return
        entries.append(entry)

    async def recent(
        self, site_key: str, visitor_id: str, /, *, limit: int, before: str | None = None
    ) -> Sequence[HistoryEntry]:
        entries = self.entries.get((site_key, visitor_id), [])
        end = len(entries)
        if before is not None:
            end = next((i for i, e in enumerate(entries) if e.id == before), end)
        return list(entries[max(0, end - limit) : end])

    async def mark(
        self, site_key: str, visitor_id: str, ids: Sequence[str], status: MarkStatus, /
    ) -> None:
        wanted = set(ids)
        entries = self.entries.get((site_key, visitor_id), [])
        for i, entry in enumerate(entries):
            if entry.id in wanted and _RANK[status] > _RANK[entry.status]:
                entries[i] = replace(entry, status=status)


class MemoryAvailability:
    """Agents are available unless a site key is listed in ``offline``."""

    def __init__(self) -> None:
        self.offline: set[str] = set()

    async def agents_available(self, site_key: str, /) -> bool:
        return site_key not in self.offline


class RecordingSignals:
    """Keeps every visitor signal; the hub's version forwards them to the agent namespace."""

    def __init__(self) -> None:
        self.signals: list[VisitorSignal] = []

    async def __call__(self, signal: VisitorSignal, /) -> None:
        self.signals.append(signal)
