"""Domain vocabulary shared by models, actions and the API: roles, statuses, kinds.

String enums so values are stable in the DB, the API and the socket.io payloads alike.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user may do; each role includes the rights of the ones listed before it."""

    AGENT = "agent"
    QA = "qa"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class ConversationStatus(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    PENDING = "pending"  # waiting on the customer
    RESOLVED = "resolved"


OPEN_STATUSES = (
    ConversationStatus.QUEUED,
    ConversationStatus.OFFERED,
    ConversationStatus.ASSIGNED,
    ConversationStatus.PENDING,
)


class Presence(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"
    WRAP_UP = "wrap_up"
    OFFLINE = "offline"


class InteractionKind(StrEnum):
    """What one entry of the append-only interaction log records."""

    MESSAGE = "message"
    NOTE = "note"
    CALL = "call"
    EVENT = "event"
    STATUS = "status"
    OFFER = "offer"
    ASSIGNMENT = "assignment"
    TRANSFER = "transfer"
    RECORDING = "recording"
    TRANSCRIPT = "transcript"
    MERGE = "merge"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class ActorType(StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    SYSTEM = "system"


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REVOKED = "revoked"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class Distribution(StrEnum):
    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    LEAST_BUSY = "least_busy"
    SKILL_LEVEL = "skill_level"
