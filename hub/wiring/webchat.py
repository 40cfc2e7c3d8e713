"""Web chat in the hub: one ``/widget`` namespace serving every webchat site key.

Site keys are ``channels`` rows of kind ``webchat`` (``address`` = the key, ``config`` = the
widget settings below). The adapter's state lives in the hub: visitor tokens (hashed) on the
channel state store, the chat history answered from the interaction log (so the ids the widget
sees are interaction ids, the same the agent inbox uses; files as signed links served by
:mod:`hub.visitor_media`), agent availability from the router's live view, and visitor
typing/read signals published to the conversation's room.

Config keys (all optional): ``title`` or ``name``, ``allowed_origins`` (list), ``require_origin``,
``agent_name``, ``agent_avatar_url``, ``greeting`` ({locale: text}), ``business_hours``
({timezone, windows: {0..6: [["09:00","17:00"], ...]}}), ``prechat_fields`` and
``offline_fields`` ([{name, type, label, required, max_length, options}]), ``limits`` (any field
of :class:`channels.webchat.config.Limits`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import time as dtime
from typing import Any

from sqlalchemy import select

from channels.base import AddressKind
from channels.webchat import (
    BusinessHours,
    FieldType,
    FormField,
    HistoryEntry,
    Limits,
    MarkStatus,
    SiteConfig,
    Visitor,
    VisitorSignal,
    WebchatChannel,
)
from channels.webchat.stores import AuthorType, StoredFile
from hub.channel_host import HostContext, Hosted, register
from hub.db.models import ChannelInstance, ContactAddress, Conversation, Interaction
from hub.domain import OPEN_STATUSES, Direction, InteractionKind
from hub.events import Event
from hub.visitor_links import FileClaims, expiry, file_url

log = logging.getLogger(__name__)

SHARED_KEY = "webchat"
SITE_CACHE_S = 5.0
AVAILABILITY_CACHE_S = 0.25
PRESENCE_EVENTS = frozenset({"agent.presence", "queues.snapshot"})
MARK_ORDER = {MarkStatus.SENT: 0, MarkStatus.DELIVERED: 1, MarkStatus.READ: 2}


def _fields(raw: Any, where: str) -> tuple[FormField, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"{where} must be a list")
    out = []
    for item in raw:
        label = item.get("label", {})
        out.append(
            FormField(
                name=str(item["name"]),
                type=FieldType(item.get("type", "text")),
                label=label if isinstance(label, dict) else {"en": str(label)},
                required=bool(item.get("required", False)),
                max_length=int(item.get("max_length", 200)),
                options=tuple(str(o) for o in item.get("options", ())),
            )
        )
    return tuple(out)


def site_config(row: ChannelInstance, own_origin: str | None = None) -> SiteConfig:
    """A channel row's widget settings; raises ValueError naming the bad key. ``own_origin``
    (the hub's public URL) is always allowed, so the hub's own pages can embed the widget."""
    cfg: Mapping[str, Any] = row.config or {}
    kwargs: dict[str, Any] = {
        "site_key": row.address,
        "name": str(cfg.get("title") or cfg.get("name") or row.name),
    }
    if "allowed_origins" in cfg:
        origins = [str(o) for o in cfg["allowed_origins"]]
        if own_origin and own_origin not in origins:
            origins.append(own_origin)
        kwargs["allowed_origins"] = tuple(origins)
    for key in ("require_origin",):
        if key in cfg:
            kwargs[key] = bool(cfg[key])
    for key in ("agent_name", "agent_avatar_url"):
        if key in cfg:
            kwargs[key] = str(cfg[key])
    if "greeting" in cfg:
        kwargs["greeting"] = {str(k): str(v) for k, v in dict(cfg["greeting"]).items()}
    if "business_hours" in cfg:
        bh = cfg["business_hours"]
        windows = {
            int(day): tuple((dtime.fromisoformat(a), dtime.fromisoformat(b)) for a, b in spans)
            for day, spans in dict(bh.get("windows", {})).items()
        }
        kwargs["business_hours"] = BusinessHours(
            timezone=str(bh.get("timezone", "UTC")), windows=windows
        )
    for key in ("prechat_fields", "offline_fields"):
        if key in cfg:
            kwargs[key] = _fields(cfg[key], key)
    if "limits" in cfg:
        kwargs["limits"] = Limits(**dict(cfg["limits"]))
    return SiteConfig(**kwargs)


class DbSites:
    """Site keys from the ``channels`` table, cached for a few seconds.

    Every widget event reads its site, so the cache is never refreshed in the request path
    once it is warm: an expired cache answers from the old copy while ONE background load
    replaces it (before this, each of the hundreds of events in flight at expiry ran its own
    load, a burst of queries and ORM objects every few seconds). Only the very first read
    waits for a load.
    """

    def __init__(self, ctx: HostContext) -> None:
        self._ctx = ctx
        self._cache: dict[str, SiteConfig | None] = {}
        self._queues: dict[str, str | None] = {}
        self._loaded = -SITE_CACHE_S  # never
        self._warm = False
        self._loading: asyncio.Task[None] | None = None

    async def _load(self) -> None:
        async with self._ctx.sessions() as session:
            rows = (
                await session.execute(
                    select(ChannelInstance).where(
                        ChannelInstance.kind == "webchat", ChannelInstance.enabled.is_(True)
                    )
                )
            ).scalars()
            cache: dict[str, SiteConfig | None] = {}
            queues: dict[str, str | None] = {}
            for row in rows:
                try:
                    own = self._ctx.settings.effective_public_url
                    cache[row.address] = site_config(row, own)
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("webchat site %s has invalid config: %s", row.name, exc)
                    cache[row.address] = None
                queues[row.address] = row.queue_id
        self._cache, self._queues = cache, queues
        self._loaded = time.monotonic()
        self._warm = True

    async def get_site(self, site_key: str, /) -> SiteConfig | None:
        if time.monotonic() - self._loaded > SITE_CACHE_S:
            if self._loading is None or self._loading.done():
                self._loading = asyncio.create_task(self._load())
                self._loading.add_done_callback(_log_failed_load)
            if not self._warm:
                await asyncio.shield(self._loading)
        return self._cache.get(site_key)

    def queue_of(self, site_key: str) -> str | None:
        return self._queues.get(site_key)


def _log_failed_load(task: asyncio.Task[None]) -> None:
    """A background refresh that failed keeps the old sites (the next read retries)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("webchat sites could not be reloaded: %s", task.exception())


class DbVisitors:
    """Visitor token hash -> visitor id (+ pre-chat answers), on the channel state store."""

    def __init__(self, ctx: HostContext) -> None:
        self._state = ctx.state

    async def find_visitor(self, site_key: str, token_hash: str, /) -> Visitor | None:
        value = await self._state.get(site_key, "visitor", token_hash)
        if value is None:
            return None
        return Visitor(str(value["visitor_id"]), site_key, dict(value.get("prechat", {})))

    async def create_visitor(self, site_key: str, token_hash: str, /) -> Visitor:
        visitor_id = "v" + secrets.token_hex(12)
        await self._state.put(site_key, "visitor", token_hash, {"visitor_id": visitor_id})
        await self._state.put(site_key, "visitor-id", visitor_id, {"token_hash": token_hash})
        return Visitor(visitor_id, site_key)

    async def save_prechat(
        self, site_key: str, visitor_id: str, answers: Mapping[str, str], /
    ) -> None:
        link = await self._state.get(site_key, "visitor-id", visitor_id)
        if link is None:
            return
        token_hash = str(link["token_hash"])
        value = await self._state.get(site_key, "visitor", token_hash) or {}
        value.update({"visitor_id": visitor_id, "prechat": dict(answers)})
        await self._state.put(site_key, "visitor", token_hash, value)


class LogHistory:
    """The widget's history, answered from the interaction log of the visitor's chats."""

    def __init__(self, ctx: HostContext) -> None:
        self._ctx = ctx

    async def append(self, site_key: str, visitor_id: str, entry: HistoryEntry, /) -> None:
        """No-op: every message is already an interaction with the same id."""

    async def _conversation_ids(self, session: Any, visitor_id: str) -> list[str]:
        return list(
            (
                await session.execute(
                    select(Conversation.id)
                    .join(ContactAddress, ContactAddress.contact_id == Conversation.contact_id)
                    .where(
                        ContactAddress.kind == AddressKind.VISITOR.value,
                        ContactAddress.value == visitor_id,
                        Conversation.channel == "webchat",
                    )
                )
            ).scalars()
        )

    async def recent(
        self, site_key: str, visitor_id: str, /, *, limit: int, before: str | None = None
    ) -> Sequence[HistoryEntry]:
        async with self._ctx.sessions() as session:
            conv_ids = await self._conversation_ids(session, visitor_id)
            if not conv_ids:
                return []
            stmt = (
                select(Interaction)
                .where(
                    Interaction.conversation_id.in_(conv_ids),
                    Interaction.kind == InteractionKind.MESSAGE.value,
                    Interaction.direction.in_([Direction.INBOUND.value, Direction.OUTBOUND.value]),
                )
                .order_by(Interaction.created_at.desc(), Interaction.id.desc())
                .limit(limit)
            )
            if before:
                pivot = await session.get(Interaction, before)
                if pivot is not None:
                    stmt = stmt.where(Interaction.created_at < pivot.created_at)
            rows = list((await session.execute(stmt)).scalars())
        marks = {k: v for k, v in await self._ctx.state.items(site_key, "mark", f"{visitor_id}:")}
        expires = expiry()
        entries = []
        for row in reversed(rows):
            inbound = row.direction == Direction.INBOUND.value
            status = marks.get(f"{visitor_id}:{row.id}", {}).get("status", "sent")
            entries.append(
                HistoryEntry(
                    id=row.id,
                    conversation_id=row.conversation_id,
                    author_type=AuthorType.VISITOR if inbound else AuthorType.AGENT,
                    text=row.text,
                    at=row.created_at,
                    author_name=None if inbound else row.payload.get("author_name"),
                    client_id=(row.payload.get("metadata") or {}).get("client_id")
                    if inbound
                    else None,
                    status=MarkStatus(status),
                    files=self._files(row, visitor_id, expires),
                )
            )
        return entries

    def _files(self, row: Interaction, visitor_id: str, expires: int) -> tuple[StoredFile, ...]:
        """Both sides' files as signed links (hub.visitor_links): the bytes stay in the media
        store and only this visitor can fetch them, until ``expires``."""
        return tuple(
            StoredFile(
                name=a.filename,
                content_type=a.content_type,
                size=a.size,
                url=file_url(
                    self._ctx.settings,
                    FileClaims(a.id, row.conversation_id, visitor_id, a.sha256, expires),
                ),
            )
            for a in row.attachments
        )

    async def mark(
        self, site_key: str, visitor_id: str, ids: Sequence[str], status: MarkStatus, /
    ) -> None:
        for message_id in ids:
            key = f"{visitor_id}:{message_id}"
            old = await self._ctx.state.get(site_key, "mark", key)
            if old is None or MARK_ORDER[MarkStatus(old["status"])] < MARK_ORDER[status]:
                await self._ctx.state.put(site_key, "mark", key, {"status": status.value})


class RouterAvailability:
    """Someone could answer: an agent of the site's queue is logged in and not away.

    Every visitor message asks (it is stamped ``offline`` or not), and the router's snapshot
    walks every queue and agent, so the answer per queue is kept for
    ``AVAILABILITY_CACHE_S``; a presence change (bus event) drops it at once.
    """

    def __init__(self, ctx: HostContext, sites: DbSites) -> None:
        self._ctx, self._sites = ctx, sites
        self._cache: dict[str | None, tuple[float, bool]] = {}

    async def on_event(self, event: Event) -> None:
        """Bus listener: agents' presence changed, re-read the router on the next question."""
        if event.name in PRESENCE_EVENTS:
            self._cache.clear()

    async def agents_available(self, site_key: str, /) -> bool:
        dispatcher = self._ctx.extras.get("dispatcher")
        if dispatcher is None:
            return False
        await self._sites.get_site(site_key)
        queue = self._sites.queue_of(site_key)
        now = time.monotonic()
        hit = self._cache.get(queue)
        if hit is not None and now - hit[0] < AVAILABILITY_CACHE_S:
            return hit[1]
        live = dispatcher.snapshot()["queues"].get(queue) if queue else None
        answer = bool(live and (live["agents_ready"] or live["agents_busy"]))
        self._cache[queue] = (now, answer)
        return answer


class BusSignals:
    """Visitor typing and receipts to the agents watching that visitor's open chat."""

    def __init__(self, ctx: HostContext, history: LogHistory) -> None:
        self._ctx, self._history = ctx, history

    async def __call__(self, signal: VisitorSignal, /) -> None:
        async with self._ctx.sessions() as session:
            conv_ids = await self._history._conversation_ids(session, signal.visitor_id)
            open_conv = (
                await session.execute(
                    select(Conversation.id)
                    .where(
                        Conversation.id.in_(conv_ids),
                        Conversation.status.in_([s.value for s in OPEN_STATUSES]),
                    )
                    .order_by(Conversation.last_message_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            ids: list[str] = []
            if signal.message_ids and conv_ids:
                ids = list(
                    (
                        await session.execute(
                            select(Interaction.id).where(
                                Interaction.id.in_(list(signal.message_ids)),
                                Interaction.conversation_id.in_(conv_ids),
                            )
                        )
                    ).scalars()
                )
        if open_conv is None:
            return
        data: dict[str, Any] = {
            "conversation_id": open_conv,
            "kind": signal.kind,
            "typing": signal.typing,
            "message_ids": ids,
        }
        await self._ctx.bus.publish(
            [Event("webchat.signal", data, rooms=(f"conversation:{open_conv}",))]
        )


@register("webchat")
async def build_webchat(instance: ChannelInstance, ctx: HostContext) -> Hosted:
    site_config(instance)  # fail this row early on bad config
    shared = ctx.shared.get(SHARED_KEY)
    if isinstance(shared, WebchatChannel):
        return Hosted(channel=shared, run=False)  # the one namespace already serves it
    sites = DbSites(ctx)
    history = LogHistory(ctx)
    availability = RouterAvailability(ctx, sites)
    if ctx.bus is not None:
        ctx.bus.subscribe(availability.on_event)
    channel = WebchatChannel(
        sites=sites,
        visitors=DbVisitors(ctx),
        history=history,
        availability=availability,
        signals=BusSignals(ctx, history),
    )
    ctx.shared[SHARED_KEY] = channel
    return Hosted(channel=channel, namespaces=[channel])
