"""The contract between every channel adapter and the hub.

An adapter turns what a customer sent into an :class:`Inbound` and hands it to a :class:`Sink`
(the hub's ingest). The hub turns an agent's reply into an :class:`Outbound` and calls
:meth:`Channel.send`. Values are frozen so they can cross task boundaries safely; untrusted input
is validated in the adapter's pure ``parse_*`` functions before an ``Inbound`` exists.

Errors are data: :class:`TransientChannelError` means "try again later" (network down, server
busy), :class:`PermanentChannelError` means "this will never work" (bad address, rejected
content) and the item goes to a dead-letter state visible to the agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable


class ChannelKind(StrEnum):
    """The media a customer can reach us by."""

    VOICE = "voice"
    EMAIL = "email"
    FAX = "fax"
    SMS = "sms"
    WEBCHAT = "webchat"


class AddressKind(StrEnum):
    """How a contact is identified on a channel: one contact may hold several of these."""

    EMAIL = "email"
    PHONE = "phone"  # E.164, shared by voice, SMS and fax
    VISITOR = "visitor"  # web-chat visitor token id


class InboundKind(StrEnum):
    """What an inbound item is; most are messages, voice adds call lifecycle events."""

    MESSAGE = "message"
    CALL = "call"  # a call arrived (voice): becomes routable work like a message
    EVENT = "event"  # something that happened on an existing conversation (DLR, hangup, typing)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Address:
    """A normalized address: lower-cased email, E.164 phone, or visitor id."""

    kind: AddressKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with (or goes out with) a message.

    ``data`` holds the bytes while the item is in flight; the hub moves them into the media store
    and keeps only the content hash.
    """

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None  # for inline parts referenced by cid: in HTML
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a customer sent, normalized.

    ``external_id`` is the idempotency key within ``(channel, channel_id)``: the same message
    delivered twice (IMAP re-read, webhook retry, socket resend) carries the same key and is stored
    once. ``thread_refs`` are explicit references to earlier messages (Message-IDs, ticket tokens,
    a conversation id) and win over heuristics when threading.
    """

    channel: ChannelKind
    channel_id: str  # the channel instance (mailbox, number, site key) it arrived on
    external_id: str
    sender: Address
    text: str = ""
    kind: InboundKind = InboundKind.MESSAGE
    sender_name: str | None = None
    recipient: str | None = None  # our address it was sent to
    subject: str | None = None
    html: str | None = None  # already sanitized by the adapter's parser
    attachments: tuple[Attachment, ...] = ()
    thread_refs: tuple[str, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    auto_generated: bool = False  # auto-reply, bounce, list mail: recorded, never new work
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.external_id:
            raise ValueError("Inbound.external_id must not be empty")
        if self.received_at.tzinfo is None:
            raise ValueError("Inbound.received_at must be timezone-aware")
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True, slots=True)
class Outbound:
    """One reply an agent (or the system) sends to a customer on a conversation's channel.

    ``idempotency_key`` is stable across retries so a provider that supports it never delivers the
    same reply twice.
    """

    channel: ChannelKind
    channel_id: str
    conversation_id: str
    to: Address
    text: str
    idempotency_key: str
    html: str | None = None
    subject: str | None = None
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = None  # provider id of the message this answers
    references: tuple[str, ...] = ()
    author_name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the channel reports after handing a reply to the network."""

    external_id: str  # provider's id (Message-ID, SMS id, call id) for threading and receipts
    status: str = "sent"  # sent | queued | delivered


@dataclass(frozen=True, slots=True)
class IngestReceipt:
    """The hub's answer to a sink call: where the item landed and whether it was new."""

    interaction_id: str
    conversation_id: str
    contact_id: str
    created: bool  # False when the same (channel, external_id) was already stored


class Sink(Protocol):
    """The hub's ingest, as seen by an adapter. Returns only after the item is committed."""

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt: ...


@runtime_checkable
class Channel(Protocol):
    """A running channel instance: a receive loop and a way to send."""

    kind: ChannelKind
    channel_id: str

    async def run(self, sink: Sink) -> None:
        """Receive until cancelled; reconnect on transient failures; never drop what arrived."""
        ...

    async def send(self, outbound: Outbound) -> SendResult:
        """Deliver one reply; raise a :class:`ChannelError` subclass on failure."""
        ...


@runtime_checkable
class SendPrecheck(Protocol):
    """Optional for a channel: say *before* a reply is queued that ``send`` would refuse it.

    The hub calls ``check_send`` when an agent sends, so a certain failure (an opted-out number,
    an address the channel cannot reach) is shown at once instead of later in the outbox. Raise
    :class:`PermanentChannelError` with a stable ``code``; ``send`` must still check for itself.
    """

    async def check_send(self, outbound: Outbound) -> None: ...


class ChannelError(Exception):
    """A channel could not do what was asked. ``code`` is stable and machine-readable."""

    code = "channel_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class TransientChannelError(ChannelError):
    """Worth retrying later (connection refused, timeout, server busy)."""

    code = "channel_transient"


class PermanentChannelError(ChannelError):
    """Never worth retrying (invalid address, content rejected, opted out): dead-letter it."""

    code = "channel_permanent"


class ParseError(PermanentChannelError):
    """Untrusted input could not be turned into an ``Inbound``; ``field`` names what was wrong."""

    code = "parse_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
