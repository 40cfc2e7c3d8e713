"""Who works and how work is organized: users, sessions, agents, skills, queues, channels, rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db.base import Base, IdColumn, utcnow
from hub.domain import Distribution, Presence, Role


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.AGENT.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    agent: Mapped[Agent | None] = relationship(back_populates="user", uselist=False)


class Session(Base):
    """A login. Only the SHA-256 of the bearer token is stored, so a DB leak leaks no tokens."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Agent(Base):
    """The working side of a user: skills, capacity per channel kind, presence."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    presence: Mapped[str] = mapped_column(String(16), default=Presence.OFFLINE.value)
    presence_reason: Mapped[str | None] = mapped_column(String(100), default=None)
    presence_since: Mapped[datetime] = mapped_column(default=utcnow)
    capacity: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"webchat": 3, "email": 5}
    call_blocks_all: Mapped[bool] = mapped_column(Boolean, default=True)
    tier: Mapped[int] = mapped_column(Integer, default=1)
    # the agent's phone for voice offers, a dial string such as "PJSIP/agent1" (None: no phone)
    voice_endpoint: Mapped[str | None] = mapped_column(String(200), default=None)

    user: Mapped[User] = relationship(back_populates="agent")
    skills: Mapped[list[AgentSkill]] = relationship(
        back_populates="agent", cascade="all, delete-orphan", lazy="selectin"
    )


class AgentSkill(Base):
    __tablename__ = "agent_skills"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[str] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(Integer)

    agent: Mapped[Agent] = relationship(back_populates="skills")
    skill: Mapped[Skill] = relationship(lazy="joined")


class Queue(Base):
    """Where work waits; declares who may take it and how it is distributed."""

    __tablename__ = "queues"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    required_skills: Mapped[list[Any]] = mapped_column(default=list)  # [{"skill","min_level"}]
    distribution: Mapped[str] = mapped_column(String(20), default=Distribution.LONGEST_IDLE.value)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    offer_ttl_s: Mapped[int] = mapped_column(Integer, default=30)
    sl_target_pct: Mapped[int] = mapped_column(Integer, default=80)
    sl_target_s: Mapped[int] = mapped_column(Integer, default=20)
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=0)
    overflow: Mapped[list[Any]] = mapped_column(default=list)  # [{"after_s", "action", ...}]
    requeue_on_disconnect: Mapped[bool] = mapped_column(Boolean, default=True)
    disconnect_grace_s: Mapped[int] = mapped_column(Integer, default=120)
    preferred_agent_window_s: Mapped[int] = mapped_column(Integer, default=0)


class ChannelInstance(Base):
    """One configured mailbox, number, fax line or web-chat site (``address`` is its key)."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("kind", "address"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(320))
    queue_id: Mapped[str | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL"), default=None
    )
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingRule(Base):
    """Declarative routing: the first matching rule (by position) picks queue and priority."""

    __tablename__ = "routing_rules"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queue_id: Mapped[str | None] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), default=None
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)  # added to the queue's priority
    stop: Mapped[bool] = mapped_column(Boolean, default=True)
