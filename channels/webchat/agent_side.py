"""What the hub pushes to visitors: agent replies, agent typing, receipts, availability.

Mixed into :class:`channels.webchat.namespace.WebchatChannel`; kept apart because it is the
hub-facing half (called from ``hub.actions`` / ``hub.realtime``) while the namespace module
handles what visitors send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from channels.base import AddressKind, Outbound, PermanentChannelError, SendResult
from channels.webchat.connection import site_room, visitor_room
from channels.webchat.stores import (
    AuthorType,
    HistoryEntry,
    HistoryStore,
    MarkStatus,
    SiteDirectory,
    StoredFile,
)

log = logging.getLogger(__name__)


class AgentSide:
    sites: SiteDirectory
    history: HistoryStore
    now: Callable[[], datetime]

    if TYPE_CHECKING:

        async def emit(
            self,
            event: str,
            data: Any = None,
            *,
            to: str | None = None,
            room: str | None = None,
            skip_sid: str | None = None,
        ) -> None: ...

    async def send(self, outbound: Outbound) -> SendResult:
        """Deliver an agent reply to every open tab of the visitor and keep it for resume.

        The message id is ``outbound.metadata["message_id"]`` (the hub's interaction id) when
        given, else the idempotency key, so a retried send replaces rather than duplicates.
        ``metadata["author_avatar_url"]`` overrides the site's default avatar; attachments with
        ``metadata["attachment_urls"]`` (one URL per file, from the hub's media store) are sent
        as links, otherwise as binary socket.io payloads.
        """
        if outbound.to.kind is not AddressKind.VISITOR:
            raise PermanentChannelError(
                f"web chat can only reach visitors, not {outbound.to.kind}", code="bad_address"
            )
        site = await self.sites.get_site(outbound.channel_id)
        if site is None:
            raise PermanentChannelError(
                f"unknown site key {outbound.channel_id!r}", code="bad_site_key"
            )
        urls: Sequence[Any] = outbound.metadata.get("attachment_urls") or ()
        files = tuple(
            StoredFile(
                a.filename,
                a.content_type,
                a.size,
                data=None if i < len(urls) else a.data,
                url=str(urls[i]) if i < len(urls) else None,
            )
            for i, a in enumerate(outbound.attachments)
        )
        message_id = str(outbound.metadata.get("message_id") or outbound.idempotency_key)
        entry = HistoryEntry(
            id=message_id,
            conversation_id=outbound.conversation_id,
            author_type=AuthorType(outbound.metadata.get("author_type", AuthorType.AGENT)),
            text=outbound.text,
            at=self.now(),
            author_name=outbound.author_name or site.agent_name,
            author_avatar_url=outbound.metadata.get("author_avatar_url") or site.agent_avatar_url,
            files=files,
        )
        await self.history.append(site.site_key, outbound.to.value, entry)
        await self.emit(
            "message", entry.to_wire(), room=visitor_room(site.site_key, outbound.to.value)
        )
        log.info("agent reply %s sent on site %s", message_id, site.site_key)
        return SendResult(external_id=message_id, status="sent")

    async def send_typing(
        self, site_key: str, visitor_id: str, typing: bool, author_name: str | None = None
    ) -> None:
        """Show (or hide) "agent is typing" in the visitor's widget."""
        await self.emit(
            "typing",
            {"typing": typing, "author": {"type": "agent", "name": author_name}},
            room=visitor_room(site_key, visitor_id),
        )

    async def mark(
        self, site_key: str, visitor_id: str, ids: Sequence[str], status: MarkStatus
    ) -> None:
        """Record and show that the agent received or read the visitor's messages."""
        await self.history.mark(site_key, visitor_id, ids, status)
        await self.emit(
            "receipt",
            {"ids": list(ids), "status": str(status)},
            room=visitor_room(site_key, visitor_id),
        )

    async def set_online(self, site_key: str, online: bool) -> None:
        """Tell every open widget of a site whether an agent can answer now."""
        await self.emit("availability", {"online": online}, room=site_room(site_key))
