"""The light visitor events: typing, receipts and history (no ingest, own rate bucket).

Mixed into :class:`channels.webchat.namespace.WebchatChannel`, which routes the events here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.webchat.config import SiteConfig
from channels.webchat.connection import Conn
from channels.webchat.payloads import parse_history, parse_receipt, parse_typing
from channels.webchat.ratelimit import SiteLimiters
from channels.webchat.stores import HistoryStore, SignalSink, VisitorSignal


class VisitorSignals:
    history: HistoryStore
    signals: SignalSink | None
    _limits: Callable[[SiteConfig], SiteLimiters]

    async def _on_typing(self, conn: Conn, site: SiteConfig, payload: Any) -> dict[str, Any]:
        typing = parse_typing(payload)
        self._limits(site).signal(conn.visitor.visitor_id)
        await self._signal(
            VisitorSignal(site.site_key, conn.visitor.visitor_id, "typing", typing=typing)
        )
        return {"ok": True}

    async def _on_receipt(self, conn: Conn, site: SiteConfig, payload: Any) -> dict[str, Any]:
        receipt = parse_receipt(payload)
        self._limits(site).signal(conn.visitor.visitor_id)
        visitor = conn.visitor
        await self.history.mark(visitor.site_key, visitor.visitor_id, receipt.ids, receipt.status)
        await self._signal(
            VisitorSignal(
                site.site_key, visitor.visitor_id, str(receipt.status), message_ids=receipt.ids
            )
        )
        return {"ok": True}

    async def _on_history(self, conn: Conn, site: SiteConfig, payload: Any) -> dict[str, Any]:
        before, limit = parse_history(payload, site.limits)
        self._limits(site).signal(conn.visitor.visitor_id)
        entries = await self.history.recent(
            site.site_key, conn.visitor.visitor_id, limit=limit, before=before
        )
        return {"messages": [e.to_wire() for e in entries], "more": len(entries) == limit}

    async def _signal(self, signal: VisitorSignal) -> None:
        if self.signals is not None:
            await self.signals(signal)
