"""The transcription job table: one row per recorded call audio, until its transcript exists.

Rows are made by a database trigger on ``attachments`` (migration 0007) in the transaction that
stores an audio attachment of a ``voice`` interaction, so no code path can store a recording
the transcriber never hears of, and a crash between recording and transcript loses nothing.
:mod:`hub.transcription` claims due rows, and marks one ``done`` in the same transaction that
appends the transcript, which is what makes a transcript exactly-once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, IdColumn, utcnow

JOB_PENDING = "pending"
JOB_DONE = "done"
JOB_FAILED = "failed"  # permanent error or out of attempts: kept for the CLI and the timeline


class TranscriptionJob(Base):
    """Transcribe the audio of ``interaction_id``. Mutable on purpose (attempts, status); the
    transcript itself is an immutable ``transcript`` interaction, ``transcript_id``."""

    __tablename__ = "transcription_jobs"
    __table_args__ = (Index("ix_transcription_jobs_status_next", "status", "next_attempt_at"),)

    interaction_id: Mapped[str] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default=JOB_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    transcript_id: Mapped[str | None] = mapped_column(IdColumn, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
