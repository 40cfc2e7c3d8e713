"""The routing catalog: routing rules and channel instances as ingest reads them, cached.

Why a cache: they change rarely (``contacthub apply``) and reading them on every message was a
third of ingest's queries. Why a refresher: reloading when an item found the copy expired put
two queries (~3 ms) on the path of the first message or call after every idle spell; the hub
runs :meth:`CatalogCache.refresh` as a task, so ingest only reads the cached copy and loads
one itself when there is none, or when the copy is too old to trust (no refresher, or it fell
behind).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Inbound
from hub.db.engine import SessionFactory
from hub.db.models import ChannelInstance, RoutingRule
from hub.rules import Facts, Rule, decide

CATALOG_TTL_S = 5.0
# with the hub's refresher running, a catalog older than this means it is stuck or failing:
# ingest then loads one itself rather than route by rules of unknown age
CATALOG_STALE_S = 3 * CATALOG_TTL_S

Route = tuple[str | None, int, tuple[str, ...]]  # queue id, priority, matched rule names


@dataclass(frozen=True, slots=True)
class Catalog:
    loaded_at: float
    rules: tuple[Rule, ...]
    channels: dict[tuple[str, str], tuple[str, str | None]]  # (kind, address) -> (id, queue)

    def channel(self, inbound: Inbound) -> tuple[str | None, str | None]:
        """The channel instance's id and default queue for ``inbound`` (None, None: unknown)."""
        return self.channels.get((inbound.channel.value, inbound.channel_id), (None, None))

    def route(
        self, inbound: Inbound, attributes: dict[str, Any], channel_queue: str | None
    ) -> Route:
        """Queue, priority and matched rules for ``inbound`` from a contact with ``attributes``
        (``channel_queue``: the fallback when no rule names a queue)."""
        facts = Facts(
            channel=inbound.channel.value,
            address=inbound.channel_id,
            text=f"{inbound.subject or ''}\n{inbound.text}",
            contact_attributes=attributes,
            metadata=inbound.metadata,
        )
        decision = decide(self.rules, facts, fallback_queue=channel_queue)
        return decision.queue_id, decision.priority, decision.matched

    def route_by_channel(self, inbound: Inbound, attributes: dict[str, Any]) -> Route:
        """:meth:`route` with the channel instance's own queue as the fallback."""
        return self.route(inbound, attributes, self.channel(inbound)[1])


async def load_catalog(session: AsyncSession) -> Catalog:
    rules = tuple(
        Rule(r.name, r.position, r.conditions, r.queue_id, r.priority, r.stop)
        for r in (await session.execute(select(RoutingRule))).scalars()
    )
    channels = {
        (c.kind, c.address): (c.id, c.queue_id)
        for c in (await session.execute(select(ChannelInstance))).scalars()
    }
    return Catalog(time.monotonic(), rules, channels)


class CatalogCache:
    """One process's cached :class:`Catalog`."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._catalog: Catalog | None = None
        self._refreshed = False  # a refresher task keeps the catalog fresh (the hub runs one)

    def invalidate(self) -> None:
        """Forget the copy (after this process changed rules or channels)."""
        self._catalog = None

    async def refresh(self) -> None:
        """Reload every ``CATALOG_TTL_S``, forever (a task of the hub's lifespan)."""
        self._refreshed = True
        try:
            while True:
                async with self._sessions() as session:
                    self._catalog = await load_catalog(session)
                await asyncio.sleep(CATALOG_TTL_S)
        finally:
            self._refreshed = False

    async def fresh(self, session: AsyncSession | None = None) -> Catalog:
        """The cached catalog, loaded here (in ``session`` if given) only when missing or too
        old to trust."""
        catalog = self._catalog
        limit = CATALOG_STALE_S if self._refreshed else CATALOG_TTL_S
        if catalog is not None and time.monotonic() - catalog.loaded_at <= limit:
            return catalog
        if session is not None:
            catalog = self._catalog = await load_catalog(session)
            return catalog
        async with self._sessions() as own:
            catalog = self._catalog = await load_catalog(own)
        return catalog
