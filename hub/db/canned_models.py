"""Canned responses: reusable reply texts, team-wide or personal to one user.

``owner_key`` is ``""`` for a team-wide response and the owner's user id for a personal one, so
one unique constraint keeps shortcuts unambiguous per scope (a NULL owner would not be unique on
PostgreSQL) while an agent's personal ``/hello`` may shadow the team's ``/hello``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, IdColumn, utcnow

TEAM_OWNER_KEY = ""


class CannedResponse(Base):
    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("owner_key", "shortcut"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    owner_key: Mapped[str] = mapped_column(String(32), default=TEAM_OWNER_KEY)
    owner_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    shortcut: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text)
    channels: Mapped[list[Any]] = mapped_column(default=list)  # [] = every channel
    created_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def scope(self) -> str:
        return "personal" if self.owner_user_id else "team"
