"""The web-chat channel: the socket.io namespace ``/widget`` that visitor widgets talk to.

Theory of operation
-------------------
:class:`WebchatChannel` is both a python-socketio ``AsyncNamespace`` and a
:class:`channels.base.Channel`. The hub registers it on its ``AsyncServer``
(``sio.register_namespace(channel)``), runs ``channel.run(sink)`` like every other channel's loop,
and calls :meth:`WebchatChannel.send` with agent replies. One instance serves every site key;
``Inbound.channel_id`` and ``Outbound.channel_id`` carry the site key.

Connect: the visitor's ``auth`` names a site key and, after the first visit, the secret visitor
token the widget kept in ``localStorage``. The key must exist, the page's ``Origin`` must be on
the site's allow-list and the IP under its connect rate, else the connection is refused with a
``connect_error`` whose ``data`` is ``{code, message}``. A known token resumes the same visitor
(same visitor id, same conversation, history available); an unknown or missing one creates a new
visitor with a fresh token. Only the token's SHA-256 reaches the store. Once the socket is
connected the server emits ``session`` and puts the socket in the visitor's room (all tabs of one
visitor) and the site's room (availability broadcasts).

Messages: ``message {text, client_id, attachments?}`` becomes an ``Inbound`` whose
``external_id`` is ``<visitor id>:<client_id>``; the hub's idempotent ingest stores a resend once
and returns the same receipt, so the ack ``{id, conversation_id}`` is the same too. The sink
returns only after the commit, so an ack means "stored". Pre-chat answers ride along in
``Inbound.metadata["prechat"]``; outside business hours or with no agent available the message is
still ingested with ``metadata["offline"] = True`` (the offline form adds
``metadata["offline_form"]``).

Agent side: :meth:`send` appends to history and emits ``message`` to the visitor's room (a visitor
not connected sees it on resume); :meth:`send_typing`, :meth:`mark` and :meth:`set_online` push
typing, receipts and availability. Visitor typing and receipts go to the hub's
:class:`~channels.webchat.stores.SignalSink` without a DB write per keystroke.

Failure: every event handler runs inside :meth:`trigger_event`'s guard, so a malformed payload,
a rate limit or a failing store yields an error ack ``{"error": {"code", "message"}}`` and a log
line (never the message text above DEBUG) and the socket and server carry on. A transient sink
failure is acked with ``code="unavailable"``; the widget resends with the same ``client_id``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from channels.base import (
    Address,
    AddressKind,
    ChannelError,
    ChannelKind,
    Inbound,
    Sink,
    TransientChannelError,
)
from channels.webchat.agent_side import AgentSide
from channels.webchat.config import SiteConfig
from channels.webchat.connection import Conn, site_room, visitor_room
from channels.webchat.payloads import (
    WidgetInputError,
    error_ack,
    parse_auth,
    parse_form,
    parse_message,
    parse_offline,
)
from channels.webchat.ratelimit import RateLimited, SiteLimiters
from channels.webchat.stores import (
    AuthorType,
    Availability,
    HistoryEntry,
    HistoryStore,
    SignalSink,
    SiteDirectory,
    StoredFile,
    Visitor,
    VisitorStore,
)
from channels.webchat.visitor_signals import VisitorSignals

log = logging.getLogger(__name__)

Handler = Callable[["Conn", SiteConfig, Any], Awaitable[dict[str, Any]]]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebchatChannel(AgentSide, VisitorSignals, socketio.AsyncNamespace):  # type: ignore[misc]
    """The ``/widget`` namespace and web-chat channel for every site key.

    ``sites``, ``visitors`` and ``history`` are the hub's stores; ``availability`` (None: agents
    always available) and ``signals`` (None: typing and receipts are dropped) are optional.
    ``trust_forwarded`` takes the client IP from the last ``X-Forwarded-For`` hop: set it only
    behind a reverse proxy that appends it, or visitors choose their own rate-limit key.
    ``clock`` (monotonic seconds, for rate limits) and ``now`` (aware datetime) are injectable.
    """

    kind = ChannelKind.WEBCHAT

    def __init__(
        self,
        *,
        sites: SiteDirectory,
        visitors: VisitorStore,
        history: HistoryStore,
        availability: Availability | None = None,
        signals: SignalSink | None = None,
        channel_id: str = "webchat",
        namespace: str = "/widget",
        trust_forwarded: bool = False,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        socketio.AsyncNamespace.__init__(self, namespace)
        self.channel_id = channel_id
        self.sites = sites
        self.visitors = visitors
        self.history = history
        self.availability = availability
        self.signals = signals
        self.trust_forwarded = trust_forwarded
        self.clock = clock
        self.now = now
        self._sink: Sink | None = None
        self._conns: dict[str, Conn] = {}
        self._limiters: dict[str, SiteLimiters] = {}
        self._handlers: dict[str, Handler] = {
            "message": self._on_message,
            "prechat": self._on_prechat,
            "offline": self._on_offline,
            "typing": self._on_typing,
            "receipt": self._on_receipt,
            "history": self._on_history,
        }

    # -- Channel ----------------------------------------------------------------------------

    async def run(self, sink: Sink) -> None:
        """Accept visitor messages into ``sink`` until cancelled (sockets are served meanwhile)."""
        self._sink = sink
        try:
            await asyncio.Event().wait()
        finally:
            self._sink = None

    # -- connect / disconnect ---------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            parsed = parse_auth(auth)
            site = await self.sites.get_site(parsed.site_key)
            if site is None:
                raise WidgetInputError("unknown site key", code="bad_site_key", field="site_key")
            origin = environ.get("HTTP_ORIGIN")
            if not site.origin_allowed(origin):
                raise WidgetInputError(
                    "this page's origin may not use the site key", code="origin_not_allowed"
                )
            ip = self._client_ip(environ)
            self._limits(site).connect(ip)
            visitor, token, resumed = await self._resolve_visitor(site, parsed.visitor_token)
        except ChannelError as exc:
            log.info("widget connect refused: %s (%s)", exc.code, exc)
            error = error_ack(exc)["error"]
            raise socketio.exceptions.ConnectionRefusedError(error["message"], error) from None
        except Exception:
            log.exception("widget connect failed")
            error = {"code": "unavailable", "message": "chat is unavailable, retry later"}
            raise socketio.exceptions.ConnectionRefusedError(error["message"], error) from None
        self._conns[sid] = Conn(
            sid, visitor, ip, origin, str(environ.get("HTTP_USER_AGENT", ""))[:300]
        )
        log.info("widget visitor connected to site %s (resumed=%s)", site.site_key, resumed)
        log.debug("visitor %s is sid %s", visitor.visitor_id, sid)
        self.server.start_background_task(self._welcome, sid, site, token, resumed)

    async def _welcome(self, sid: str, site: SiteConfig, token: str, resumed: bool) -> None:
        """Emit ``session`` once the CONNECT packet is out (the server sends it after
        ``on_connect`` returns; an event emitted earlier would reach the client first)."""
        for _ in range(200):
            if self.server.manager.is_connected(sid, self.namespace):
                break
            await asyncio.sleep(0.005)
        conn = self._conns.get(sid)
        if conn is None:
            return
        visitor = conn.visitor
        try:
            online = await self._online(site)
            await self.enter_room(sid, visitor_room(site.site_key, visitor.visitor_id))
            await self.enter_room(sid, site_room(site.site_key))
            await self.emit(
                "session",
                {
                    "visitor_token": token,
                    "visitor_id": visitor.visitor_id,
                    "resumed": resumed,
                    "prechat": dict(visitor.prechat),
                    "site": site.public_view(online=online),
                },
                to=sid,
            )
        except Exception:
            # without a session the client would wait forever: drop it, it reconnects
            log.exception("widget session setup failed")
            await self.disconnect(sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self._conns.pop(sid, None)
        if conn is not None:
            log.debug("visitor %s disconnected (%s)", conn.visitor.visitor_id, reason)

    async def _resolve_visitor(
        self, site: SiteConfig, token: str | None
    ) -> tuple[Visitor, str, bool]:
        if token is not None:
            found = await self.visitors.find_visitor(site.site_key, token_hash(token))
            if found is not None:
                return found, token, True
        token = secrets.token_urlsafe(32)
        return await self.visitors.create_visitor(site.site_key, token_hash(token)), token, False

    def _client_ip(self, environ: dict[str, Any]) -> str:
        if self.trust_forwarded:
            forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")[-1].strip()
            if forwarded:
                return forwarded
        scope = environ.get("asgi.scope") or {}
        client = scope.get("client")  # the ASGI driver's REMOTE_ADDR is always 127.0.0.1
        if client:
            return str(client[0])
        return str(environ.get("REMOTE_ADDR", "?"))

    # -- event dispatch ---------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        handler = self._handlers.get(event)
        label = event if handler is not None else "?"  # never echo arbitrary client text in logs
        try:
            conn = self._conns.get(sid)
            if conn is None:
                raise WidgetInputError("the session is not ready", code="no_session")
            if handler is None:
                log.debug("unknown widget event %r", event[:40])
                raise WidgetInputError("unknown event", code="unknown_event")
            if len(args) != 2:
                raise WidgetInputError(f"{event} takes exactly one argument")
            site = await self.sites.get_site(conn.visitor.site_key)
            if site is None:
                raise WidgetInputError("the site key was withdrawn", code="bad_site_key")
            return await handler(conn, site, args[1])
        except WidgetInputError as exc:
            log.warning("widget %r refused: %s field=%s (%s)", label, exc.code, exc.field, exc)
            return error_ack(exc)
        except RateLimited as exc:
            log.warning("widget %r rate-limited, sid %s", label, sid)
            return error_ack(exc)
        except TransientChannelError as exc:
            log.warning("widget %r could not be stored: %s", label, exc)
            return {
                "error": {
                    "code": "unavailable",
                    "message": "not stored, retry later",
                    "retryable": True,
                }
            }
        except ChannelError as exc:
            log.warning("widget %r rejected by the hub: %s", label, exc.code)
            return error_ack(exc)
        except Exception:
            log.exception("widget %r failed", label)
            return {
                "error": {
                    "code": "internal",
                    "message": "internal error, retry later",
                    "retryable": True,
                }
            }

    def _limits(self, site: SiteConfig) -> SiteLimiters:
        current = self._limiters.get(site.site_key)
        if current is None or current.limits is not site.limits:
            current = self._limiters[site.site_key] = SiteLimiters(site.limits, self.clock)
        return current

    async def _online(self, site: SiteConfig) -> bool:
        if not site.business_hours.is_open(self.now()):
            return False
        return self.availability is None or await self.availability.agents_available(site.site_key)

    # -- visitor events ---------------------------------------------------------------------

    async def _on_message(self, conn: Conn, site: SiteConfig, payload: Any) -> dict[str, Any]:
        self._limits(site).message(conn.visitor.visitor_id, conn.ip)
        msg = parse_message(payload, site.limits)
        metadata: dict[str, Any] = {"offline": not await self._online(site)}
        if msg.page_url:
            metadata["page_url"] = msg.page_url
        inbound = self._inbound(conn, site, msg.client_id, msg.text, metadata, msg.attachments)
        return await self._ingest(conn, inbound, msg.client_id)

    async def _on_offline(self, conn: Conn, site: SiteConfig, payload: Any) -> dict[str, Any]:
        self._limits(site).message(conn.visitor.visitor_id, conn.ip)
        form = parse_offline(payload, site.offline_fields, site.limits)
        metadata = {"offline": True, "offline_form": dict(form.answers)}
        inbound = self._inbound(
            conn,
            site,
            form.client_id,
            form.text,
            metadata,
            (),
            sender_name=form.answers.get("name"),
        )
        return await self._ingest(conn, inbound, form.client_id)

    def _inbound(
        self,
        conn: Conn,
        site: SiteConfig,
        client_id: str,
        text: str,
        metadata: dict[str, Any],
        attachments: tuple[Any, ...],
        sender_name: str | None = None,
    ) -> Inbound:
        visitor = conn.visitor
        if visitor.prechat:
            metadata["prechat"] = dict(visitor.prechat)
        metadata.update(client_id=client_id, origin=conn.origin, user_agent=conn.user_agent)
        return Inbound(
            channel=ChannelKind.WEBCHAT,
            channel_id=site.site_key,
            external_id=f"{visitor.visitor_id}:{client_id}",
            sender=Address(AddressKind.VISITOR, visitor.visitor_id),
            text=text,
            sender_name=sender_name or visitor.prechat.get("name"),
            attachments=attachments,
            received_at=self.now(),
            metadata=metadata,
        )

    async def _ingest(self, conn: Conn, inbound: Inbound, client_id: str) -> dict[str, Any]:
        if self._sink is None:
            raise TransientChannelError("the channel is not running")
        receipt = await self._sink(inbound)
        ack = {"id": receipt.interaction_id, "conversation_id": receipt.conversation_id}
        if not receipt.created:
            log.info(
                "widget resend of an acked client_id on sid %s: acked again, not stored", conn.sid
            )
            return ack
        entry = HistoryEntry(
            id=receipt.interaction_id,
            conversation_id=receipt.conversation_id,
            author_type=AuthorType.VISITOR,
            text=inbound.text,
            at=inbound.received_at,
            author_name=inbound.sender_name,
            client_id=client_id,
            files=tuple(
                StoredFile(a.filename, a.content_type, a.size, a.data) for a in inbound.attachments
            ),
        )
        visitor = conn.visitor
        await self.history.append(visitor.site_key, visitor.visitor_id, entry)
        room = visitor_room(visitor.site_key, visitor.visitor_id)
        if self._others_in(room, conn.sid):  # the visitor's other tabs show the message too
            await self.emit("message", entry.to_wire(), room=room, skip_sid=conn.sid)
        return ack

    def _others_in(self, room: str, sid: str) -> bool:
        """Whether an emit to ``room`` skipping ``sid`` could reach anyone: most visitors have
        one tab, and building and encoding a packet for nobody was a visible part of each
        message's cost. Any other manager than the local one (Redis pub/sub) may have tabs in
        other processes: emit."""
        manager = self.server.manager
        if isinstance(manager, AsyncPubSubManager) or not isinstance(
            manager, socketio.AsyncManager
        ):
            return True
        members = manager.rooms.get(self.namespace, {}).get(room)
        if not members:
            return False
        return len(members) > 1 or sid not in members  # no iteration: a bidict's is slow

    async def _on_prechat(self, conn: Conn, site: SiteConfig, payload: Any) -> dict[str, Any]:
        self._limits(site).message(conn.visitor.visitor_id, conn.ip)
        answers = parse_form(payload, site.prechat_fields, key="fields")
        visitor = conn.visitor
        await self.visitors.save_prechat(visitor.site_key, visitor.visitor_id, answers)
        for other in self._conns.values():
            if other.visitor.visitor_id == visitor.visitor_id:
                other.visitor = Visitor(visitor.visitor_id, visitor.site_key, answers)
        return {"ok": True, "prechat": answers}
