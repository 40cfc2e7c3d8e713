"""A reply's writes as one short sync unit, for :mod:`hub.actions.batch_writer`.

Why: a reply's writes ran as ORM statements through aiosqlite's thread, one event-loop cycle
per hop, with SQLite's write lock held from the first statement to ``COMMIT``: ~6 ms at the
median and up to ~300 ms under chat load, and the group-commit writer (every visitor's ack)
queued behind it. The reads and checks of a reply take no lock, so they stay async
(:func:`hub.actions.conversations.prepare_reply`); what is left is four Core statements, which
the SQLite writer runs on the loop in a fraction of a millisecond.

The unit re-checks what the reads decided and a concurrent writer could have changed: the
conversation is numbered only while it is not resolved (else the same 409 as the check before),
and a lost ``client_id`` race hits the unique ``dedupe_key`` (the caller re-reads the winner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.engine import Connection

from hub.db.models import AttachmentRecord, Conversation, Interaction, OutboundDelivery
from hub.domain import ConversationStatus
from hub.errors import Conflict

_CONVERSATIONS = cast(Table, Conversation.__table__)
# built once: numbers the entry and moves last_message_at in one UPDATE, only while open
_NUMBER_OPEN = (
    update(_CONVERSATIONS)
    .where(
        _CONVERSATIONS.c.id == bindparam("conv_id"),
        _CONVERSATIONS.c.status != ConversationStatus.RESOLVED.value,
    )
    .values(
        interaction_count=_CONVERSATIONS.c.interaction_count + 1,
        last_message_at=bindparam("at"),
        updated_at=bindparam("at"),
    )
    .returning(_CONVERSATIONS.c.interaction_count)
)
_INSERT_INTERACTION = insert(cast(Table, Interaction.__table__))
_INSERT_ATTACHMENTS = insert(cast(Table, AttachmentRecord.__table__))
_INSERT_DELIVERY = insert(cast(Table, OutboundDelivery.__table__))


def resolved_conflict() -> Conflict:
    return Conflict("conversation is resolved: reopen it before replying", code="resolved")


@dataclass(frozen=True)
class ReplyWrite:
    """Everything a reply writes, decided before the transaction; call it with the
    transaction's connection. Returns the entry's column values (with its ``seq``)."""

    entry: dict[str, Any]  # interaction column values without seq
    attachments: tuple[dict[str, Any], ...]
    delivery: dict[str, Any]

    def __call__(self, conn: Connection) -> dict[str, Any]:
        seq = conn.execute(
            _NUMBER_OPEN,
            {"conv_id": self.entry["conversation_id"], "at": self.entry["created_at"]},
        ).scalar_one_or_none()
        if seq is None:
            raise resolved_conflict()
        row = {**self.entry, "seq": seq}
        conn.execute(_INSERT_INTERACTION, row)
        if self.attachments:
            conn.execute(_INSERT_ATTACHMENTS, list(self.attachments))
        conn.execute(_INSERT_DELIVERY, self.delivery)
        return row
