"""Ingest of many items in one transaction, with a fixed number of statements per batch.

Why: one item through the ORM costs ~15 round trips and a commit; at a few hundred items per
second that is the whole budget. When several inbound items wait at once (the ingestor gathers
them, see :class:`hub.actions.ingest.Ingestor`), this module stores them together: one query
finds duplicates, one the known addresses, one the open conversations of known contacts; then
one executemany per table inserts contacts, addresses, conversations, interactions,
attachments and thread refs. Per item the work is Python over those prefetched rows, in arrival
order, so the outcome equals ingesting the items one after another:

- a key seen earlier in the batch is a duplicate of that earlier item;
- an address created earlier in the batch is that contact (one contact per address);
- a conversation opened earlier in the batch is the contact's open conversation on the channel.

``seq`` is allocated without gaps: a conversation inserted here gets 1..n directly, an existing
one is bumped by n with an atomic ``UPDATE ... RETURNING`` (row-locked on PostgreSQL, the single
writer on SQLite) and its new entries take the n numbers below the returned count.

Only the common shapes go here: items with thread references or delivery reports, and senders
whose contact was merged into another, are marked ``slow`` and the caller ingests them one by
one with the full path. Races with other transactions surface as ``IntegrityError`` on the
unique keys; the caller rolls back and retries the batch, which then sees the winner's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from channels.base import Attachment, Inbound, InboundKind, IngestReceipt
from hub.actions.log import entry_dict, insert_interactions, interaction_values
from hub.db.models import (
    AttachmentRecord,
    Contact,
    ContactAddress,
    Conversation,
    ConversationRef,
    Interaction,
)
from hub.domain import OPEN_STATUSES, ActorType, ConversationStatus, Direction, InteractionKind
from hub.events import Event
from hub.ids import new_id

log = logging.getLogger(__name__)

Route = Callable[[Inbound, dict[str, Any]], tuple[str | None, int, tuple[str, ...]]]
Stored = Sequence[tuple[Attachment, str]]

_KIND = {
    InboundKind.MESSAGE: InteractionKind.MESSAGE,
    InboundKind.CALL: InteractionKind.CALL,
    InboundKind.EVENT: InteractionKind.EVENT,
}
_OPEN = [s.value for s in OPEN_STATUSES]
# Core tables: executemany without the ORM's per-object bookkeeping
_CONTACTS = cast(Table, Contact.__table__)
_ADDRESSES = cast(Table, ContactAddress.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)
_ATTACHMENTS = cast(Table, AttachmentRecord.__table__)
_REFS = cast(Table, ConversationRef.__table__)


@dataclass(slots=True)
class BatchItem:
    """One inbound item; the batch fills ``receipt``/``events``, or sets ``slow``."""

    inbound: Inbound
    stored: Stored
    key: str
    receipt: IngestReceipt | None = None
    events: list[Event] = field(default_factory=list)
    slow: bool = False
    _entry: dict[str, Any] | None = None
    _files: list[dict[str, Any]] = field(default_factory=list)
    _queue_id: str | None = None
    _queued: bool = False
    _new_contact: bool = False


@dataclass(slots=True)
class _Contact:
    id: str
    name: str | None
    attributes: dict[str, Any]
    merged: bool = False
    insert: bool = False  # created in this batch


@dataclass(slots=True)
class _Conv:
    id: str
    queue_id: str | None
    status: str
    assignee_id: str | None
    insert_row: dict[str, Any] | None = None  # created in this batch
    status_changed: bool = False
    entries: list[dict[str, Any]] = field(default_factory=list)


def eligible(inbound: Inbound, is_delivery_report: Callable[[Inbound], bool]) -> bool:
    """Whether the batch path handles this item (else the caller's one-by-one path does)."""
    return not inbound.thread_refs and not is_delivery_report(inbound)


async def _duplicates(conn: AsyncConnection, keys: list[str]) -> dict[str, IngestReceipt]:
    i, c = _INTERACTIONS.c, _CONVERSATIONS.c
    rows = await conn.execute(
        select(i.dedupe_key, i.id, i.conversation_id, c.contact_id)
        .join_from(_INTERACTIONS, _CONVERSATIONS, c.id == i.conversation_id)
        .where(i.dedupe_key.in_(keys))
    )
    return {r[0]: IngestReceipt(r[1], r[2], r[3], created=False) for r in rows}


async def _contacts(
    conn: AsyncConnection, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], _Contact]:
    a, c = _ADDRESSES.c, _CONTACTS.c
    rows = await conn.execute(
        select(a.kind, a.value, c.id, c.name, c.attributes, c.merged_into_id)
        .join_from(_ADDRESSES, _CONTACTS, c.id == a.contact_id)
        .where(a.kind.in_({k for k, _ in pairs}), a.value.in_({v for _, v in pairs}))
    )
    found: dict[tuple[str, str], _Contact] = {}
    by_id: dict[str, _Contact] = {}  # one state per contact, whichever address found it
    for kind, value, cid, name, attributes, merged_into in rows:
        if (kind, value) in pairs:
            contact = by_id.setdefault(
                cid, _Contact(cid, name, attributes or {}, merged_into is not None)
            )
            found[(kind, value)] = contact
    return found


async def _open_conversations(
    conn: AsyncConnection, contact_ids: set[str]
) -> dict[tuple[str, str], _Conv]:
    """The latest open conversation per (contact, channel), as ``_find_thread`` picks it."""
    c = _CONVERSATIONS.c
    rows = await conn.execute(
        select(c.id, c.contact_id, c.channel, c.queue_id, c.status, c.assignee_id)
        .where(c.contact_id.in_(contact_ids), c.status.in_(_OPEN))
        .order_by(c.last_message_at.desc())
    )
    out: dict[tuple[str, str], _Conv] = {}
    for cid, contact_id, channel, queue_id, status, assignee_id in rows:
        out.setdefault((contact_id, channel), _Conv(cid, queue_id, status, assignee_id))
    return out


def _payload(inbound: Inbound) -> dict[str, Any]:
    return {
        "sender": str(inbound.sender),
        "sender_name": inbound.sender_name,
        "recipient": inbound.recipient,
        "channel_id": inbound.channel_id,
        "received_at": inbound.received_at.isoformat(),
        "auto_generated": inbound.auto_generated,
        "metadata": dict(inbound.metadata),
    }


class _Batch:
    def __init__(
        self,
        conn: AsyncConnection,
        route: Route,
        channels: Mapping[tuple[str, str], tuple[str, str | None]],
        now: datetime,
    ) -> None:
        self.conn, self.route, self.channels, self.now = conn, route, channels, now
        self.seen: dict[str, IngestReceipt] = {}
        self.contacts: dict[tuple[str, str], _Contact] = {}
        self.convs: dict[tuple[str, str], _Conv] = {}
        self.touched: dict[str, _Conv] = {}  # conversation id -> state, in first-touch order
        self.renamed: dict[str, str] = {}
        self.attachments: list[dict[str, Any]] = []
        self.refs: list[dict[str, Any]] = []

    async def prefetch(self, items: list[BatchItem]) -> None:
        self.seen = await _duplicates(self.conn, [it.key for it in items])
        pairs = {(it.inbound.sender.kind.value, it.inbound.sender.value) for it in items}
        self.contacts = await _contacts(self.conn, pairs)
        known = {c.id for c in self.contacts.values() if not c.merged}
        if known:
            self.convs = await _open_conversations(self.conn, known)

    def plan(self, item: BatchItem) -> None:
        """Decide one item against the prefetched and in-batch state (arrival order)."""
        inbound, now = item.inbound, self.now
        dup = self.seen.get(item.key)
        if dup is not None:
            log.info(
                "duplicate inbound on %s ignored (interaction %s)",
                inbound.channel,
                dup.interaction_id,
            )
            item.receipt = IngestReceipt(
                dup.interaction_id, dup.conversation_id, dup.contact_id, created=False
            )
            return
        pair = (inbound.sender.kind.value, inbound.sender.value)
        contact = self.contacts.get(pair)
        if contact is not None and contact.merged:
            item.slow = True  # follow the merge chain on the full path
            return
        new_contact = contact is None
        if contact is None:
            contact = _Contact(new_id("contact"), inbound.sender_name or None, {}, insert=True)
            self.contacts[pair] = contact
        elif inbound.sender_name and not contact.name:
            contact.name = inbound.sender_name[:200]
            if not contact.insert:
                self.renamed[contact.id] = contact.name
        channel = inbound.channel.value
        routable = not inbound.auto_generated and inbound.kind is not InboundKind.EVENT
        conv = self.convs.get((contact.id, channel))
        new_conv = conv is None
        if conv is None:
            instance_id, _queue = self.channels.get((channel, inbound.channel_id), (None, None))
            queue_id, priority, matched = self.route(inbound, contact.attributes)
            status = ConversationStatus.QUEUED if routable else ConversationStatus.RESOLVED
            conv = _Conv(new_id("conversation"), queue_id, status.value, None)
            conv.insert_row = {
                "id": conv.id,
                "contact_id": contact.id,
                "channel": channel,
                "channel_instance_id": instance_id,
                "queue_id": queue_id,
                "status": status.value,
                "assignee_id": None,
                "priority": priority,
                "subject": (inbound.subject or None) and inbound.subject[:500],
                "attributes": {"rules": list(matched), "auto_generated": not routable}
                if matched or not routable
                else {},
                "created_at": now,
                "updated_at": now,
                "queued_at": now if routable else None,
                "last_message_at": now,
                "resolved_at": None if routable else now,
            }
            if routable:  # a resolved case is not "open": the next message starts another
                self.convs[(contact.id, channel)] = conv
        elif conv.status == ConversationStatus.PENDING.value and routable:
            conv.status = (
                ConversationStatus.ASSIGNED.value
                if conv.assignee_id
                else ConversationStatus.QUEUED.value
            )
            conv.status_changed = True
        self.touched.setdefault(conv.id, conv)
        entry = interaction_values(
            conv.id,
            0,  # numbered in write(), once existing conversations returned their counts
            kind=_KIND[inbound.kind],
            direction=Direction.INBOUND,
            channel=channel,
            actor_type=ActorType.CONTACT,
            actor_id=contact.id,
            text=inbound.text,
            html=inbound.html,
            subject=inbound.subject,
            payload=_payload(inbound),
            external_id=inbound.external_id,
            dedupe_key=item.key,
            at=now,
        )
        conv.entries.append(entry)
        files = [
            {
                "id": new_id("attachment"),
                "interaction_id": entry["id"],
                "filename": att.filename[:255],
                "content_type": att.content_type[:255],
                "size": att.size,
                "sha256": sha,
            }
            for att, sha in item.stored
        ]
        self.attachments += files
        self.refs.append(
            {"channel": channel, "ref": inbound.external_id[:998], "conversation_id": conv.id}
        )
        self.seen[item.key] = IngestReceipt(entry["id"], conv.id, contact.id, created=False)
        item.receipt = IngestReceipt(entry["id"], conv.id, contact.id, created=True)
        item._entry, item._files, item._queue_id = entry, files, conv.queue_id
        item._queued, item._new_contact = new_conv and routable, new_contact

    async def write(self) -> None:
        conn, now = self.conn, self.now
        contacts = [c for c in self.contacts.values() if c.insert]
        if contacts:
            await conn.execute(
                insert(_CONTACTS),
                [
                    {
                        "id": c.id,
                        "name": c.name,
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                        "merged_into_id": None,
                    }
                    for c in contacts
                ],
            )
            await conn.execute(
                insert(_ADDRESSES),
                [
                    {
                        "id": new_id("address"),
                        "contact_id": c.id,
                        "kind": kind,
                        "value": value,
                        "created_at": now,
                    }
                    for (kind, value), c in self.contacts.items()
                    if c.insert
                ],
            )
        ct = _CONTACTS.c
        for contact_id, name in self.renamed.items():
            await conn.execute(update(_CONTACTS).where(ct.id == contact_id).values(name=name))
        new_rows = [c.insert_row for c in self.touched.values() if c.insert_row is not None]
        for conv in self.touched.values():
            if conv.insert_row is not None:
                conv.insert_row["interaction_count"] = len(conv.entries)
                first = 1
            else:
                first = await self._bump(conv)
            for n, entry in enumerate(conv.entries):
                entry["seq"] = first + n
        if new_rows:
            await conn.execute(insert(_CONVERSATIONS), new_rows)
        await insert_interactions(conn, [e for conv in self.touched.values() for e in conv.entries])
        if self.attachments:
            await conn.execute(insert(_ATTACHMENTS), self.attachments)
        if self.refs:
            dialect = conn.dialect.name
            ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await conn.execute(
                ins(_REFS).on_conflict_do_nothing(index_elements=["channel", "ref"]),
                self.refs,
            )

    async def _bump(self, conv: _Conv) -> int:
        """Take ``len(entries)`` numbers from an existing conversation's counter atomically."""
        c = _CONVERSATIONS.c
        values: dict[str, Any] = {
            "interaction_count": c.interaction_count + len(conv.entries),
            "last_message_at": self.now,
        }
        if conv.status_changed:
            values["status"] = conv.status
        count = (
            await self.conn.execute(
                update(_CONVERSATIONS)
                .where(c.id == conv.id)
                .values(**values)
                .returning(c.interaction_count)
            )
        ).scalar_one()
        return int(count) - len(conv.entries) + 1


def _events(item: BatchItem) -> list[Event]:
    """The item's events, in the order the one-by-one path publishes them (``seq`` known now)."""
    if item.receipt is None or item._entry is None:
        return []
    conv_id = item.receipt.conversation_id
    rooms = (f"conversation:{conv_id}", f"queue:{item._queue_id}")
    events = [Event("interaction.created", entry_dict(item._entry, item._files), rooms=rooms)]
    if item._queued:
        events.append(Event("conversation.queued", {"id": conv_id}, rooms=rooms))
    if item._new_contact:
        events.append(Event("contact.created", {"id": item.receipt.contact_id}))
    return events


async def ingest_batch(
    conn: AsyncConnection,
    items: list[BatchItem],
    *,
    route: Route,
    channels: Mapping[tuple[str, str], tuple[str, str | None]],
    now: datetime,
) -> None:
    """Store ``items`` in the caller's transaction; fills each item's receipt and events (to be
    published after commit) or marks it ``slow``. Raises ``IntegrityError`` on a lost race."""
    batch = _Batch(conn, route, channels, now)
    await batch.prefetch(items)
    for it in items:
        batch.plan(it)
    await batch.write()
    for it in items:
        it.events = _events(it)
