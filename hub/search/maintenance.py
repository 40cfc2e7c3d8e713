"""Rebuild the index, erase a contact everywhere, and apply per-channel retention.

All three delete from the database first and tell the index through the outbox (``delete`` /
``purge_contact`` rows), so a running hub's drainer applies them and a stopped one applies
them at its next start. Media files are deleted only once no attachment row references their
hash any more (content-addressed files are shared by identical attachments).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.base import utcnow
from hub.db.engine import SessionFactory
from hub.db.models import (
    AttachmentRecord,
    ChannelInstance,
    Contact,
    ContactAddress,
    Conversation,
    Interaction,
)
from hub.db.search_models import OP_DELETE, OP_PURGE_CONTACT, SearchOutbox
from hub.domain import ConversationStatus
from hub.search.docs import INDEXED_KINDS, rows_to_docs, stream_rows
from recorder.media import MediaStore
from recorder.search import SearchIndex

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


async def reindex(
    sessions: SessionFactory,
    index: SearchIndex,
    *,
    batch: int = 5_000,
    commit_every: int = 100_000,
    progress: Progress | None = None,
) -> int:
    """Clear the index and rebuild it from the interactions table; returns docs indexed.

    Outbox rows that existed when the rebuild started are covered by it and are dropped.
    """
    async with sessions() as session:
        total = (
            await session.execute(
                select(func.count())
                .select_from(Interaction)
                .where(Interaction.kind.in_(INDEXED_KINDS))
            )
        ).scalar_one()
        high = (await session.execute(select(func.max(SearchOutbox.id)))).scalar_one()
    await index.clear()
    done = indexed = since_commit = 0
    async with sessions() as session:
        async for rows in stream_rows(session, batch):
            docs = rows_to_docs(rows)
            await index.bulk_insert(docs)
            done += len(rows)
            indexed += len(docs)
            since_commit += len(docs)
            if since_commit >= commit_every:
                await index.commit()
                since_commit = 0
            if progress is not None:
                progress(done, max(total, done))
    await index.commit()
    if high is not None:
        async with sessions() as session, session.begin():
            await session.execute(delete(SearchOutbox).where(SearchOutbox.id <= high))
    log.info("reindex: %d docs from %d interactions", indexed, done)
    return indexed


async def _unreferenced(session: AsyncSession, shas: Iterable[str]) -> list[str]:
    wanted = sorted(set(shas))
    if not wanted:
        return []
    still = set(
        (
            await session.execute(
                select(AttachmentRecord.sha256).where(AttachmentRecord.sha256.in_(wanted))
            )
        ).scalars()
    )
    return [s for s in wanted if s not in still]


async def _delete_media(
    sessions: SessionFactory, media: MediaStore | None, shas: Iterable[str]
) -> int:
    if media is None:
        return 0
    async with sessions() as session:
        orphans = await _unreferenced(session, shas)
    removed = 0
    for sha in orphans:
        removed += await media.delete(sha)
    return removed


@dataclass
class PurgeReport:
    """What a purge or a retention run removed."""

    contacts: int = 0
    addresses: int = 0
    conversations: int = 0
    interactions: int = 0
    attachments: int = 0
    media_files: int = 0
    index_updates: int = 0
    contact_ids: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"contacts: {self.contacts}",
            f"addresses: {self.addresses}",
            f"conversations: {self.conversations}",
            f"interactions: {self.interactions}",
            f"attachments: {self.attachments}",
            f"media files: {self.media_files}",
            f"index updates queued: {self.index_updates}",
        ]


def _rowcount(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


async def _count(session: AsyncSession, stmt: object) -> int:
    return int((await session.execute(stmt)).scalar_one())  # type: ignore[call-overload]


async def purge_contact(
    sessions: SessionFactory, media: MediaStore | None, contact_id: str
) -> PurgeReport | None:
    """Erase a contact (and contacts merged into it) with everything recorded about them.

    Returns ``None`` if there is no such contact. The index update is queued in the same
    transaction as the deletion (a ``purge_contact`` outbox row per contact).
    """
    report = PurgeReport()
    async with sessions() as session, session.begin():
        if await session.get(Contact, contact_id) is None:
            return None
        ids = [contact_id]
        frontier = [contact_id]
        while frontier:  # contacts merged into this one are the same person
            merged = list(
                (
                    await session.execute(
                        select(Contact.id).where(Contact.merged_into_id.in_(frontier))
                    )
                ).scalars()
            )
            frontier = [m for m in merged if m not in ids]
            ids += frontier
        convs = select(Conversation.id).where(Conversation.contact_id.in_(ids))
        ixs = select(Interaction.id).where(Interaction.conversation_id.in_(convs))
        shas = list(
            (
                await session.execute(
                    select(AttachmentRecord.sha256).where(AttachmentRecord.interaction_id.in_(ixs))
                )
            ).scalars()
        )
        report.attachments = len(shas)
        report.addresses = await _count(
            session,
            select(func.count())
            .select_from(ContactAddress)
            .where(ContactAddress.contact_id.in_(ids)),
        )
        # delete in dependency order (explicit, so SQLite and PostgreSQL count alike)
        await session.execute(
            delete(AttachmentRecord).where(AttachmentRecord.interaction_id.in_(ixs))
        )
        report.interactions = _rowcount(
            await session.execute(delete(Interaction).where(Interaction.conversation_id.in_(convs)))
        )
        report.conversations = _rowcount(
            await session.execute(delete(Conversation).where(Conversation.contact_id.in_(ids)))
        )
        await session.execute(delete(ContactAddress).where(ContactAddress.contact_id.in_(ids)))
        await session.execute(
            update(Contact).where(Contact.merged_into_id.in_(ids)).values(merged_into_id=None)
        )
        report.contacts = _rowcount(
            await session.execute(delete(Contact).where(Contact.id.in_(ids)))
        )
        session.add_all(SearchOutbox(interaction_id=c, op=OP_PURGE_CONTACT) for c in ids)
        report.index_updates = len(ids)
        report.contact_ids = ids
    report.media_files = await _delete_media(sessions, media, shas)
    log.info(
        "purged contact %s (%d merged): %d conversations, %d interactions, %d media files",
        contact_id,
        len(ids) - 1,
        report.conversations,
        report.interactions,
        report.media_files,
    )
    return report


def retention_days(config: dict[str, object]) -> float | None:
    """A channel's ``retention_days`` (a positive number), or ``None`` to keep everything."""
    raw = config.get("retention_days")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        return None
    return float(raw)


async def apply_retention(
    sessions: SessionFactory,
    media: MediaStore | None,
    now: datetime | None = None,
    batch: int = 1_000,
) -> PurgeReport:
    """Delete interactions older than their channel instance's ``retention_days`` (and then
    resolved conversations left empty), queue their index deletes, drop orphaned media."""
    now = now or utcnow()
    report = PurgeReport()
    async with sessions() as session:
        channels = [
            (cid, days)
            for cid, config in (
                await session.execute(select(ChannelInstance.id, ChannelInstance.config))
            )
            if (days := retention_days(dict(config or {}))) is not None
        ]
    shas: list[str] = []
    for channel_id, days in channels:
        cutoff = now - timedelta(days=days)
        while True:
            async with sessions() as session, session.begin():
                ids = list(
                    (
                        await session.execute(
                            select(Interaction.id)
                            .join(Conversation, Conversation.id == Interaction.conversation_id)
                            .where(
                                Conversation.channel_instance_id == channel_id,
                                Interaction.created_at < cutoff,
                            )
                            .limit(batch)
                        )
                    ).scalars()
                )
                if not ids:
                    break
                found = list(
                    (
                        await session.execute(
                            select(AttachmentRecord.sha256).where(
                                AttachmentRecord.interaction_id.in_(ids)
                            )
                        )
                    ).scalars()
                )
                shas += found
                report.attachments += len(found)
                await session.execute(
                    delete(AttachmentRecord).where(AttachmentRecord.interaction_id.in_(ids))
                )
                await session.execute(delete(Interaction).where(Interaction.id.in_(ids)))
                session.add_all(SearchOutbox(interaction_id=i, op=OP_DELETE) for i in ids)
                report.interactions += len(ids)
                report.index_updates += len(ids)
        async with sessions() as session, session.begin():
            has_any = select(Interaction.id).where(Interaction.conversation_id == Conversation.id)
            report.conversations += _rowcount(
                await session.execute(
                    delete(Conversation).where(
                        Conversation.channel_instance_id == channel_id,
                        Conversation.status == ConversationStatus.RESOLVED.value,
                        ~has_any.exists(),
                    )
                )
            )
    report.media_files = await _delete_media(sessions, media, shas)
    if report.interactions:
        log.info(
            "retention: %d interactions, %d conversations, %d media files removed",
            report.interactions,
            report.conversations,
            report.media_files,
        )
    return report
