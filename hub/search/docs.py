"""Interaction rows -> :class:`SearchDoc`: what is indexed and how it is labelled.

Only text-bearing entries are indexed (messages, notes, transcripts, recordings, calls with
text); offers, assignments and status changes are bookkeeping, not something QA searches. The
document ``kind`` is what QA thinks in: an email, an SMS, a fax, a chat message, a transcript,
a note, a recording, derived from the interaction kind and its channel.

``queue`` and ``agent`` come from the conversation (its queue id and current assignee's agent
id) at the time the doc is built; an assignment or transfer re-indexes the conversation's docs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import AttachmentRecord, Conversation, Interaction
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
# Entries that change a conversation's labels (queue, assignee, contact): its docs are rebuilt.
RELABEL_KINDS = frozenset(
    {
        InteractionKind.ASSIGNMENT.value,
        InteractionKind.TRANSFER.value,
        InteractionKind.MERGE.value,
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

Row = tuple[Interaction, Conversation]


def doc_kind(interaction_kind: str, channel: str) -> str:
    """The QA-facing kind: ``email``/``sms``/``fax``/``chat``/``voicemail`` for messages,
    otherwise the interaction kind (``note``, ``transcript``, ``recording``, ``call``)."""
    if interaction_kind == InteractionKind.MESSAGE.value:
        return _MESSAGE_KIND_BY_CHANNEL.get(channel, "message")
    return interaction_kind


def has_recording(ix: Interaction, attachments: Sequence[AttachmentRecord]) -> bool:
    return ix.kind == InteractionKind.RECORDING.value or any(
        a.content_type.lower().startswith("audio/") for a in attachments
    )


def build_doc(
    ix: Interaction, conv: Conversation, attachments: Sequence[AttachmentRecord]
) -> SearchDoc | None:
    """The doc of one interaction, or ``None`` if it is not indexed."""
    if ix.kind not in INDEXED_KINDS:
        return None
    recording = has_recording(ix, attachments)
    text = (ix.text or "")[:MAX_TEXT]
    subject = ix.subject or ""
    if not text.strip() and not subject.strip() and not recording:
        return None
    channel = ix.channel if ix.channel in CHANNELS else conv.channel
    if channel not in CHANNELS:
        log.warning("interaction %s has channel %r: not indexed", ix.id, ix.channel)
        return None
    score = ix.payload.get("qa_score") if isinstance(ix.payload, dict) else None
    try:
        return SearchDoc(
            id=ix.id,
            conversation_id=conv.id,
            contact_id=conv.contact_id,
            channel=channel,
            direction=ix.direction,
            kind=doc_kind(ix.kind, channel),
            at=ix.created_at,
            text=text,
            subject=subject,
            queue=conv.queue_id,
            agent=conv.assignee_id,
            has_recording=recording,
            qa_score=float(score) if isinstance(score, int | float) else None,
        )
    except InvalidDocError as exc:  # logged with the field, never the content
        log.error("interaction %s cannot be indexed: %s", ix.id, exc.field)
        return None


def _base() -> Select[Interaction, Conversation]:
    return select(Interaction, Conversation).join(
        Conversation, Conversation.id == Interaction.conversation_id
    )


async def _attachments(
    session: AsyncSession, ids: Iterable[str]
) -> dict[str, list[AttachmentRecord]]:
    out: dict[str, list[AttachmentRecord]] = {}
    wanted = list(ids)
    if not wanted:
        return out
    rows = await session.execute(
        select(AttachmentRecord).where(AttachmentRecord.interaction_id.in_(wanted))
    )
    for att in rows.scalars():
        out.setdefault(att.interaction_id, []).append(att)
    return out


async def rows_to_docs(session: AsyncSession, rows: Sequence[Row]) -> list[SearchDoc]:
    """Docs for ``(interaction, conversation)`` rows (non-indexed entries dropped)."""
    candidates = [(ix, conv) for ix, conv in rows if ix.kind in INDEXED_KINDS]
    atts = await _attachments(session, (ix.id for ix, _ in candidates))
    docs = [build_doc(ix, conv, atts.get(ix.id, [])) for ix, conv in candidates]
    return [d for d in docs if d is not None]


async def load_rows(session: AsyncSession, interaction_ids: Iterable[str]) -> list[Row]:
    wanted = list(interaction_ids)
    if not wanted:
        return []
    result = await session.execute(
        _base().execution_options(populate_existing=True).where(Interaction.id.in_(wanted))
    )
    return [(ix, conv) for ix, conv in result]


async def conversation_rows(
    session: AsyncSession, conversation_ids: Iterable[str], limit: int = 10_000
) -> list[Row]:
    """The indexable entries of whole conversations (re-labelled after an assignment)."""
    wanted = list(conversation_ids)
    if not wanted:
        return []
    result = await session.execute(
        _base()
        .where(Interaction.conversation_id.in_(wanted), Interaction.kind.in_(INDEXED_KINDS))
        .limit(limit)
    )
    return [(ix, conv) for ix, conv in result]


async def stream_rows(
    session: AsyncSession, batch: int = 5_000, after: str = ""
) -> AsyncIterator[list[Row]]:
    """Every indexable entry in id order, in batches (reindex); yields lists of rows."""
    last = after
    while True:
        result = await session.execute(
            _base()
            .where(Interaction.id > last, Interaction.kind.in_(INDEXED_KINDS))
            .order_by(Interaction.id)
            .limit(batch)
        )
        rows = [(ix, conv) for ix, conv in result]
        if not rows:
            return
        yield rows
        last = rows[-1][0].id
        session.expunge_all()
