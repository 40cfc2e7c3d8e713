"""Interaction rows -> :class:`SearchDoc`: what is indexed and how it is labelled.

Only text-bearing entries are indexed (messages, notes, transcripts, recordings, calls with
text); offers, assignments and status changes are bookkeeping, not something QA searches. The
document ``kind`` is what QA thinks in: an email, an SMS, a fax, a chat message, a transcript,
a note, a recording, derived from the interaction kind and its channel.

``queue`` and ``agent`` come from the conversation (its queue id and current assignee's agent
id) at the time the doc is built, so every entry that can change them (assignment, transfer,
merge, and status changes, which is how a requeue or reopen clears the assignee) re-indexes the
conversation's docs: an agent's search follows who holds a conversation *now*.

``qa_score`` is the conversation's score: its latest QA evaluation, carried by every doc of the
conversation (a QA search is for scored conversations, not for the evaluation notes). The
evaluation's log note re-indexes the conversation through the outbox, like an assignment.

Rows are read with one Core select of only the columns a doc needs, the audio-attachment flag
and the conversation's latest score folded in as subqueries: the drainer runs after every chat
burst, and loading ORM objects (identity map, attribute instrumentation) plus two follow-up
queries per batch cost more CPU than the chat message path itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import AttachmentRecord, Conversation, Interaction, QaEvaluation
from hub.domain import InteractionKind
from recorder.search import CHANNELS, InvalidDocError, SearchDoc

log = logging.getLogger(__name__)

INDEXED_KINDS = frozenset(
    {
        InteractionKind.MESSAGE.value,
        InteractionKind.NOTE.value,
        InteractionKind.TRANSCRIPT.value,
        InteractionKind.RECORDING.value,
        InteractionKind.CALL.value,
    }
)
# Entries that may change a conversation's labels (queue, assignee, contact): its docs are
# rebuilt. Status entries are included because requeue and reopen clear the assignee.
RELABEL_KINDS = frozenset(
    {
        InteractionKind.ASSIGNMENT.value,
        InteractionKind.TRANSFER.value,
        InteractionKind.MERGE.value,
        InteractionKind.STATUS.value,
    }
)
_MESSAGE_KIND_BY_CHANNEL = {
    "email": "email",
    "sms": "sms",
    "fax": "fax",
    "webchat": "chat",
    "voice": "voicemail",
}
MAX_TEXT = 100_000  # characters of one doc's text (a long transcript is still searchable)

# One row per interaction: the columns below, by these names (see ``_COLUMNS``).
DocRow = Row[Any]


def _audio_attached() -> ColumnElement[bool]:
    return exists().where(
        AttachmentRecord.interaction_id == Interaction.id,
        func.lower(AttachmentRecord.content_type).like("audio/%"),
    )


def _latest_score() -> Any:
    return (
        select(QaEvaluation.score)
        .where(QaEvaluation.conversation_id == Interaction.conversation_id)
        .order_by(QaEvaluation.created_at.desc(), QaEvaluation.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _base() -> Select[Any]:
    return select(
        Interaction.id,
        Interaction.kind,
        Interaction.channel,
        Interaction.direction,
        Interaction.text,
        Interaction.subject,
        Interaction.payload,
        Interaction.created_at,
        Interaction.conversation_id,
        Conversation.contact_id,
        Conversation.channel.label("conv_channel"),
        Conversation.queue_id,
        Conversation.assignee_id,
        _audio_attached().label("audio"),
        _latest_score().label("score"),
    ).join(Conversation, Conversation.id == Interaction.conversation_id)


def doc_kind(interaction_kind: str, channel: str) -> str:
    """The QA-facing kind: ``email``/``sms``/``fax``/``chat``/``voicemail`` for messages,
    otherwise the interaction kind (``note``, ``transcript``, ``recording``, ``call``)."""
    if interaction_kind == InteractionKind.MESSAGE.value:
        return _MESSAGE_KIND_BY_CHANNEL.get(channel, "message")
    return interaction_kind


def relabels_conversation(kind: str, payload: object) -> bool:
    """Whether indexing an entry of ``kind`` must rebuild its whole conversation's docs: a
    label change, or a QA evaluation note (which changes the conversation's ``qa_score``)."""
    if kind in RELABEL_KINDS:
        return True
    note = kind == InteractionKind.NOTE.value
    return note and isinstance(payload, dict) and "qa_score" in payload


def build_doc(row: DocRow) -> SearchDoc | None:
    """The doc of one row of :func:`_base`, or ``None`` if it is not indexed."""
    if row.kind not in INDEXED_KINDS:
        return None
    recording = row.kind == InteractionKind.RECORDING.value or bool(row.audio)
    text = (row.text or "")[:MAX_TEXT]
    subject = row.subject or ""
    if not text.strip() and not subject.strip() and not recording:
        return None
    channel = row.channel if row.channel in CHANNELS else row.conv_channel
    if channel not in CHANNELS:
        log.warning("interaction %s has channel %r: not indexed", row.id, row.channel)
        return None
    score: object = row.score
    if score is None and isinstance(row.payload, dict):  # an evaluation note, scores absent
        score = row.payload.get("qa_score")
    try:
        return SearchDoc(
            id=row.id,
            conversation_id=row.conversation_id,
            contact_id=row.contact_id,
            channel=channel,
            direction=row.direction,
            kind=doc_kind(row.kind, channel),
            at=row.created_at,
            text=text,
            subject=subject,
            queue=row.queue_id,
            agent=row.assignee_id,
            has_recording=recording,
            qa_score=float(score) if isinstance(score, int | float) else None,
        )
    except InvalidDocError as exc:  # logged with the field, never the content
        log.error("interaction %s cannot be indexed: %s", row.id, exc.field)
        return None


def rows_to_docs(rows: Iterable[DocRow]) -> list[SearchDoc]:
    """Docs for rows of :func:`_base` (non-indexed entries dropped)."""
    docs = (build_doc(row) for row in rows)
    return [d for d in docs if d is not None]


async def load_rows(session: AsyncSession, interaction_ids: Iterable[str]) -> list[DocRow]:
    wanted = list(interaction_ids)
    if not wanted:
        return []
    out: list[DocRow] = []
    for start in range(0, len(wanted), 1000):  # bounded IN lists
        chunk = wanted[start : start + 1000]
        out += (await session.execute(_base().where(Interaction.id.in_(chunk)))).all()
    return out


async def conversation_rows(
    session: AsyncSession, conversation_ids: Iterable[str], limit: int = 10_000
) -> list[DocRow]:
    """The indexable entries of whole conversations (re-labelled after an assignment)."""
    wanted = list(conversation_ids)
    if not wanted:
        return []
    result = await session.execute(
        _base()
        .where(Interaction.conversation_id.in_(wanted), Interaction.kind.in_(INDEXED_KINDS))
        .limit(limit)
    )
    return list(result.all())


async def stream_rows(
    session: AsyncSession, batch: int = 5_000, after: str = ""
) -> AsyncIterator[Sequence[DocRow]]:
    """Every indexable entry in id order, in batches (reindex); yields lists of rows."""
    last = after
    while True:
        result = await session.execute(
            _base()
            .where(Interaction.id > last, Interaction.kind.in_(INDEXED_KINDS))
            .order_by(Interaction.id)
            .limit(batch)
        )
        rows = result.all()
        if not rows:
            return
        yield rows
        last = rows[-1].id
