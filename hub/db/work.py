"""The work itself: contacts, conversations, the append-only interaction log, offers, outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db.base import Base, IdColumn, utcnow
from hub.domain import ConversationStatus, DeliveryStatus, OfferStatus


class Contact(Base):
    """One person across channels. A merged contact points at the one that absorbed it."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    merged_into_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), default=None
    )

    addresses: Mapped[list[ContactAddress]] = relationship(
        back_populates="contact", lazy="selectin", cascade="all, delete-orphan"
    )


class ContactAddress(Base):
    """A normalized address; unique across contacts so one number is always one person."""

    __tablename__ = "contact_addresses"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    contact_id: Mapped[str] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="addresses")


class Conversation(Base):
    """A case: one contact, one channel, a queue, a status and at most one assignee."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_contact_channel_status", "contact_id", "channel", "status"),
        Index("ix_conversations_status_queue", "status", "queue_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    channel_instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL"), default=None
    )
    queue_id: Mapped[str | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.QUEUED.value)
    assignee_id: Mapped[str | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), default=None, index=True
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str | None] = mapped_column(String(500), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    interaction_count: Mapped[int] = mapped_column(Integer, default=0)  # last Interaction.seq


class ConversationRef(Base):
    """An explicit thread reference (Message-ID, ticket token, call id) pointing at a case."""

    __tablename__ = "conversation_refs"
    __table_args__ = (UniqueConstraint("channel", "ref"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(998))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )


class Interaction(Base):
    """One entry of the append-only log. Never updated: corrections are new entries.

    ``dedupe_key`` is ``channel:channel_id:external_id`` for inbound items, so a redelivered
    message hits the unique constraint instead of being stored twice.
    """

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_conversation_created", "conversation_id", "seq"),
        # voice: a call's conversation by its ARI id; the queue's recent assignments (wait)
        Index("ix_interactions_kind_created", "kind", "created_at"),
        Index("ix_interactions_external_id", "external_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)  # per-conversation order
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(32), default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text, default=None)
    subject: Mapped[str | None] = mapped_column(String(998), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    external_id: Mapped[str | None] = mapped_column(String(998), default=None)
    dedupe_key: Mapped[str | None] = mapped_column(String(1100), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    attachments: Mapped[list[AttachmentRecord]] = relationship(lazy="selectin")


class AttachmentRecord(Base):
    """A file of an interaction; the bytes live in the media store under ``sha256``."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class Offer(Base):
    __tablename__ = "offers"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str | None] = mapped_column(String(32), default=None)


class OutboundDelivery(Base):
    """The delivery outbox: an agent's reply waits here until its channel accepted it.

    Mutable on purpose (attempts, status); what the customer sees is the immutable interaction.
    """

    __tablename__ = "outbound_deliveries"
    __table_args__ = (Index("ix_outbound_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    channel_instance_id: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    external_id: Mapped[str | None] = mapped_column(String(998), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelState(Base):
    """Small durable state owned by channel adapters (opt-outs, UIDs, nonces, visitor tokens).

    One generic table instead of one per adapter: ``scope`` is the channel instance (or
    ``*`` for state shared by all), ``namespace`` names the adapter's store, ``key`` is unique
    within both. ``expires_at`` lets stores keep replay nonces and tombstones only as long as
    they matter.
    """

    __tablename__ = "channel_state"
    __table_args__ = (UniqueConstraint("scope", "namespace", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    namespace: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(500))
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
