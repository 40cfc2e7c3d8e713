"""Tables of search and media auditing: the search outbox and the media access log.

``search_outbox`` is filled by a database trigger on ``interactions`` (migration 0003), so every
insert, whatever code path makes it, queues an index update in the same transaction. The hub
itself only adds ``delete`` and ``purge_contact`` rows (purge and retention).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, utcnow
from hub.db.work import AttachmentRecord

OP_UPSERT = "upsert"
OP_DELETE = "delete"
OP_PURGE_CONTACT = "purge_contact"


class SearchOutbox(Base):
    """One pending index update. ``interaction_id`` holds the subject of ``op``: an interaction
    id for ``upsert``/``delete``, a contact id for ``purge_contact``. Rows are deleted only
    after the index committed, so a crash replays them (harmless: upserts are keyed by id)."""

    __tablename__ = "search_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    interaction_id: Mapped[str] = mapped_column(String(32))
    op: Mapped[str] = mapped_column(String(16), default=OP_UPSERT)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaAccess(Base):
    """Who fetched which media object, when, and which byte range (the listening audit)."""

    __tablename__ = "media_access"
    __table_args__ = (Index("ix_media_access_sha256_at", "sha256", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(32), default=None)
    sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    range: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[int] = mapped_column(Integer)


# Media access checks and purges look attachments up by content hash.
ATTACHMENT_SHA_INDEX = Index("ix_attachments_sha256", AttachmentRecord.sha256)
