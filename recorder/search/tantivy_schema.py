"""The tantivy schema of interactions and the mapping between :class:`SearchDoc` and tantivy.

- ``subject``/``text``: English stemming (``en_stem``) with positions, for phrases; stored,
  because highlights are cut from the stored text.
- Labels (channel, queue, agent, direction, kind): ``raw`` tokenizer (exact match) and fast
  fields, which the terms aggregation needs for facet counts.
- ``sort_key``: i64 fast field, one column for time order, date-range filters and search-after
  cursors (see :mod:`recorder.search.paging`). Not indexed: tantivy runs range queries on the
  column of a fast field, so a term per document (a million unique terms at 1M docs) only
  cost indexing time (version 3). ``qa_score`` likewise: range filters only.
- ``at_us``: stored microseconds, so ``at`` round-trips exactly.
- ``pairs``: adjacent pairs of common words of subject and text as one term each (doc ids
  only, not stored; see :mod:`recorder.search.tantivy_terms`), so a two-common-word phrase is
  one term lookup.

Bump :data:`SCHEMA_VERSION` on any change: an index on disk with another version is not
opened (the hub rebuilds it with ``reindex``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import tantivy

from recorder.search import tantivy_terms
from recorder.search.paging import sort_key
from recorder.search.types import SearchDoc

SCHEMA_VERSION = 3  # 2: the ``pairs`` field; 3: ``sort_key`` and ``qa_score`` not indexed
TEXT_FIELDS = ("subject", "text")
LABEL_FIELDS = ("channel", "queue", "agent", "direction", "kind")
ID_FIELDS = ("id", "conversation_id", "contact_id")
PAIR_FIELD = "pairs"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def build_schema() -> tantivy.Schema:
    """The interaction schema (see module docstring)."""
    sb = tantivy.SchemaBuilder()
    for name in ID_FIELDS:
        sb.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in LABEL_FIELDS:
        sb.add_text_field(name, stored=True, fast=True, tokenizer_name="raw",
                          index_option="basic")
    for name in TEXT_FIELDS:
        sb.add_text_field(name, stored=True, tokenizer_name="en_stem", index_option="position")
    sb.add_text_field(PAIR_FIELD, stored=False, tokenizer_name="whitespace",
                      index_option="basic")
    sb.add_integer_field("sort_key", fast=True)
    sb.add_integer_field("at_us", stored=True)
    sb.add_boolean_field("has_recording", stored=True, indexed=True, fast=True)
    sb.add_float_field("qa_score", stored=True, fast=True)
    return sb.build()


def to_tantivy(doc: SearchDoc) -> tantivy.Document:
    """A tantivy document for ``doc``; absent optional values (and an empty subject, most
    documents') are left out.

    Built with ``add_*`` calls rather than ``Document.from_dict``: this runs once per document
    on the thread that feeds tantivy, the bulk-indexing bottleneck, and measured ~1.4 us
    against ~2.4 us. ``doc.at`` is UTC (``SearchDoc`` guarantees it), so one subtraction gives
    both the stored microseconds and the sort key's milliseconds (floor division equals
    :func:`~recorder.search.types.utc_ms`, also before 1970).
    """
    delta = doc.at - _EPOCH
    at_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    out = tantivy.Document()
    out.add_text("id", doc.id)
    out.add_text("conversation_id", doc.conversation_id)
    out.add_text("contact_id", doc.contact_id)
    out.add_text("channel", doc.channel)
    out.add_text("direction", doc.direction)
    out.add_text("kind", doc.kind)
    if doc.subject:
        out.add_text("subject", doc.subject)
    out.add_text("text", doc.text)
    out.add_integer("sort_key", sort_key(doc.id, at_us // 1000))
    out.add_integer("at_us", at_us)
    out.add_boolean("has_recording", doc.has_recording)
    pairs = tantivy_terms.pair_field(doc.subject, doc.text)
    if pairs:
        out.add_text(PAIR_FIELD, pairs)
    if doc.queue is not None:
        out.add_text("queue", doc.queue)
    if doc.agent is not None:
        out.add_text("agent", doc.agent)
    if doc.qa_score is not None:
        out.add_float("qa_score", float(doc.qa_score))
    return out


def _first(stored: dict[str, list[Any]], name: str) -> Any:
    values = stored.get(name)
    return values[0] if values else None


def from_tantivy(document: tantivy.Document) -> SearchDoc:
    """The :class:`SearchDoc` stored in a tantivy document."""
    stored: dict[str, list[Any]] = document.to_dict()
    qa = _first(stored, "qa_score")
    return SearchDoc(
        id=_first(stored, "id"),
        conversation_id=_first(stored, "conversation_id"),
        contact_id=_first(stored, "contact_id"),
        channel=_first(stored, "channel"),
        direction=_first(stored, "direction"),
        kind=_first(stored, "kind"),
        at=_EPOCH + timedelta(microseconds=int(_first(stored, "at_us"))),
        text=_first(stored, "text") or "",
        subject=_first(stored, "subject") or "",
        queue=_first(stored, "queue"),
        agent=_first(stored, "agent"),
        has_recording=bool(_first(stored, "has_recording")),
        qa_score=None if qa is None else float(qa),
    )
