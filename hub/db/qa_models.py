"""Quality assurance tables: scorecard forms (versioned) and the evaluations scored with them.

A form is a stable identity (``qa_forms``) whose content lives in immutable versions
(``qa_form_versions``): editing a form adds a version and moves ``current_version``, so every
evaluation keeps pointing at the exact criteria and weights it was scored against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, IdColumn, utcnow


class QaForm(Base):
    """A scorecard's identity; its content is the version numbered ``current_version``."""

    __tablename__ = "qa_forms"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaFormVersion(Base):
    """One immutable version: name, description and criteria (key, label, weight, kind...)."""

    __tablename__ = "qa_form_versions"
    __table_args__ = (UniqueConstraint("form_id", "version"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    form_id: Mapped[str] = mapped_column(ForeignKey("qa_forms.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    criteria: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaEvaluation(Base):
    """One scored conversation (or one interaction of it) for one agent; ``score`` is 0-100."""

    __tablename__ = "qa_evaluations"
    __table_args__ = (
        Index("ix_qa_evaluations_agent_at", "agent_id", "created_at"),
        Index("ix_qa_evaluations_conversation", "conversation_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    form_id: Mapped[str] = mapped_column(ForeignKey("qa_forms.id", ondelete="CASCADE"))
    form_version_id: Mapped[str] = mapped_column(
        ForeignKey("qa_form_versions.id", ondelete="CASCADE")
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    interaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL"), default=None
    )
    agent_id: Mapped[str | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), default=None
    )
    evaluator_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score: Mapped[float] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text, default="")
    log_interaction_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
