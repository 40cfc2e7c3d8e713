"""Ingest of many items in one transaction, with a fixed number of statements per batch.

Why: one item through the ORM costs ~15 round trips and a commit; at a few hundred items per
second that is the whole budget. When several inbound items wait at once (the ingestor gathers
them, see :class:`hub.actions.ingest.Ingestor`), this module stores them together: one query
finds duplicates, one the known addresses with their contacts' open conversations; then
one executemany per table inserts contacts, addresses, conversations, interactions,
attachments and thread refs, and one ``UPDATE ... RETURNING`` numbers the entries of every
existing conversation the batch touched. Per item the work is Python over those prefetched
rows, in arrival order, so the outcome equals ingesting the items one after another:

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

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from channels.base import Attachment, Inbound, InboundKind, IngestReceipt
from hub.actions.batch_writer import insert_rows
from hub.actions.log import entry_dict, interaction_values
from hub.actions.queued import WORK_KEY, work_facts
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
    _work: dict[str, Any] | None = None  # routing facts, when it opened a queued conversation
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


# The batch's statements, built once: constructing a select per batch cost more CPU than
# running it (small batches are the common case below ~500 chat messages per second).
_I, _C, _A, _K = _INTERACTIONS.c, _CONVERSATIONS.c, _ADDRESSES.c, _CONTACTS.c
_DUPLICATES = (
    select(_I.dedupe_key, _I.id, _I.conversation_id, _C.contact_id)
    .join_from(_INTERACTIONS, _CONVERSATIONS, _C.id == _I.conversation_id)
    .where(_I.dedupe_key.in_(bindparam("keys", expanding=True)))
)
# the senders' contacts and, in the same statement, each unmerged one's open conversations
# (latest first, as ``_find_thread`` picks them): one round trip fewer per batch
_KNOWN_SENDERS = (
    select(
        _A.kind, _A.value, _K.id, _K.name, _K.attributes, _K.merged_into_id,
        _C.id, _C.channel, _C.queue_id, _C.status, _C.assignee_id,
    )
    .select_from(
        _ADDRESSES.join(_CONTACTS, _K.id == _A.contact_id).outerjoin(
            _CONVERSATIONS,
            and_(_C.contact_id == _K.id, _K.merged_into_id.is_(None), _C.status.in_(_OPEN)),
        )
    )
    .where(
        _A.kind.in_(bindparam("kinds", expanding=True)),
        _A.value.in_(bindparam("values", expanding=True)),
    )
    .order_by(_C.last_message_at.desc())
)  # fmt: skip
_BUMP = (
    update(_CONVERSATIONS)
    .where(_C.id.in_(bindparam("ids", expanding=True)))
    .values(
        interaction_count=_C.interaction_count + bindparam("n"),
        last_message_at=bindparam("now", type_=_C.last_message_at.type),
    )
    .returning(_C.id, _C.interaction_count)
)
_BUMP_STATUS = _BUMP.values(status=bindparam("status"))
_INSERT = {t.name: insert(t) for t in (_CONTACTS, _ADDRESSES, _CONVERSATIONS, _INTERACTIONS)}
_INSERT_ATTACHMENTS = insert(_ATTACHMENTS)
_INSERT_REFS_SQLITE = sqlite.insert(_REFS).on_conflict_do_nothing(index_elements=["channel", "ref"])
_INSERT_REFS_PG = postgresql.insert(_REFS).on_conflict_do_nothing(index_elements=["channel", "ref"])


def _duplicates(conn: Connection, keys: list[str]) -> dict[str, IngestReceipt]:
    rows = conn.execute(_DUPLICATES, {"keys": keys})
    return {r[0]: IngestReceipt(r[1], r[2], r[3], created=False) for r in rows}


def _senders(
    conn: Connection, pairs: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], _Contact], dict[tuple[str, str], _Conv]]:
    """The known senders' contacts by address, and the latest open conversation per (contact,
    channel) of those not merged into another."""
    rows = conn.execute(
        _KNOWN_SENDERS,
        {"kinds": sorted({k for k, _ in pairs}), "values": sorted({v for _, v in pairs})},
    )
    found: dict[tuple[str, str], _Contact] = {}
    by_id: dict[str, _Contact] = {}  # one state per contact, whichever address found it
    convs: dict[tuple[str, str], _Conv] = {}
    for kind, value, cid, name, attributes, merged_into, *conv in rows:
        if (kind, value) not in pairs:  # kinds x values matched an address nobody sent from
            continue
        contact = by_id.setdefault(
            cid, _Contact(cid, name, attributes or {}, merged_into is not None)
        )
        found[(kind, value)] = contact
        conv_id, channel, queue_id, status, assignee_id = conv
        if conv_id is not None:
            convs.setdefault((cid, channel), _Conv(conv_id, queue_id, status, assignee_id))
    return found, convs


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
        conn: Connection,
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

    def prefetch(self, items: list[BatchItem]) -> None:
        self.seen = _duplicates(self.conn, [it.key for it in items])
        pairs = {(it.inbound.sender.kind.value, it.inbound.sender.value) for it in items}
        self.contacts, self.convs = _senders(self.conn, pairs)

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
        item.receipt = IngestReceipt(entry["id"], conv.id, contact.id, created=True)
        self.seen[item.key] = item.receipt  # a later copy in the batch answers with its ids
        item._entry, item._files, item._queue_id = entry, files, conv.queue_id
        item._new_contact = new_contact
        if new_conv and routable and (row := conv.insert_row) is not None:
            item._work = work_facts(
                status=row["status"], queue_id=row["queue_id"], channel=row["channel"],
                priority=row["priority"], queued_at=row["queued_at"],
                contact_id=row["contact_id"], attributes=row["attributes"],
            )  # fmt: skip

    def write(self) -> None:
        conn, now = self.conn, self.now
        contacts = [c for c in self.contacts.values() if c.insert]
        if contacts:
            insert_rows(
                conn,
                _INSERT["contacts"],
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
            insert_rows(
                conn,
                _INSERT["contact_addresses"],
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
            conn.execute(update(_CONTACTS).where(ct.id == contact_id).values(name=name))
        new_rows = [c.insert_row for c in self.touched.values() if c.insert_row is not None]
        firsts = self._bump([c for c in self.touched.values() if c.insert_row is None])
        for conv in self.touched.values():
            if conv.insert_row is not None:
                conv.insert_row["interaction_count"] = len(conv.entries)
                first = 1
            else:
                first = firsts[conv.id]
            for n, entry in enumerate(conv.entries):
                entry["seq"] = first + n
        if new_rows:
            insert_rows(conn, _INSERT["conversations"], new_rows)
        entries = [e for conv in self.touched.values() for e in conv.entries]
        if entries:  # a batch of duplicates only writes nothing
            insert_rows(conn, _INSERT["interactions"], entries)
        if self.attachments:
            insert_rows(conn, _INSERT_ATTACHMENTS, self.attachments)
        if self.refs:
            refs = _INSERT_REFS_PG if conn.dialect.name == "postgresql" else _INSERT_REFS_SQLITE
            insert_rows(conn, refs, self.refs)

    def _bump(self, convs: list[_Conv]) -> dict[str, int]:
        """Take ``len(entries)`` numbers from each existing conversation's counter atomically;
        returns each one's first new ``seq``. One ``UPDATE ... RETURNING`` per distinct
        (count, new status), usually a single statement however many chats the batch touched
        (one per conversation was most of a busy batch's round trips)."""
        groups: dict[tuple[int, str | None], list[str]] = {}
        for conv in convs:
            status = conv.status if conv.status_changed else None
            groups.setdefault((len(conv.entries), status), []).append(conv.id)
        firsts: dict[str, int] = {}
        for (n, status), ids in groups.items():
            # sorted: one lock order across concurrent batches (PostgreSQL row locks)
            params: dict[str, Any] = {"ids": sorted(ids), "n": n, "now": self.now}
            if status is None:
                rows = self.conn.execute(_BUMP, params)
            else:
                rows = self.conn.execute(_BUMP_STATUS, {**params, "status": status})
            for conv_id, count in rows:
                firsts[conv_id] = int(count) - n + 1
        missing = [conv.id for conv in convs if conv.id not in firsts]
        if missing:  # deleted meanwhile (purge): the one-by-one path decides these items
            raise RuntimeError(f"{len(missing)} conversation(s) vanished during the batch")
        return firsts


def _events(item: BatchItem) -> list[Event]:
    """The item's events, in the order the one-by-one path publishes them (``seq`` known now)."""
    if item.receipt is None or item._entry is None:
        return []
    conv_id = item.receipt.conversation_id
    rooms = (f"conversation:{conv_id}", f"queue:{item._queue_id}")
    events = [Event("interaction.created", entry_dict(item._entry, item._files), rooms=rooms)]
    if item._work is not None:
        events.append(Event("conversation.queued", {"id": conv_id, WORK_KEY: item._work},
                            rooms=rooms))  # fmt: skip
    if item._new_contact:
        events.append(Event("contact.created", {"id": item.receipt.contact_id}))
    return events


def ingest_batch(
    conn: Connection,
    items: list[BatchItem],
    *,
    route: Route,
    channels: Mapping[tuple[str, str], tuple[str, str | None]],
    now: datetime,
) -> None:
    """Store ``items`` in the caller's transaction; fills each item's receipt and events (to be
    published after commit) or marks it ``slow``. Raises ``IntegrityError`` on a lost race.

    Sync code on purpose: :mod:`hub.actions.batch_writer` runs it in one thread call on SQLite
    (one driver hop per batch instead of several per statement) or through ``run_sync``."""
    batch = _Batch(conn, route, channels, now)
    batch.prefetch(items)
    for it in items:
        batch.plan(it)
    batch.write()
    for it in items:
        it.events = _events(it)
