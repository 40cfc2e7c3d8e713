"""Values that cross the :class:`~recorder.search.protocol.SearchIndex` boundary.

Everything is a frozen dataclass validated on construction, so a bad value fails where it is
built (with the offending field named) and never half-way through an index write. Both backends
read and produce exactly these types, which is what lets one conformance suite cover them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from recorder.search.errors import InvalidDocError, InvalidQueryError

CHANNELS = frozenset({"voice", "email", "fax", "sms", "webchat"})
DIRECTIONS = frozenset({"inbound", "outbound", "internal"})
FACET_FIELDS = frozenset({"channel", "queue", "agent", "direction", "kind"})
MAX_LIMIT = 1000

# Meilisearch primary keys allow only these characters; enforcing it for every backend keeps
# them interchangeable. Hub IDs (``ix_<ULID>``) fit.
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _check_id(value: str, field_name: str) -> None:
    if not _ID_RE.match(value):
        raise InvalidDocError(field_name, "must be 1-200 chars of A-Z a-z 0-9 _ -")


def _check_label(value: str | None, field_name: str) -> None:
    if value is not None and (not value or len(value) > 200):
        raise InvalidDocError(field_name, "must be a non-empty string of at most 200 chars")


@dataclass(frozen=True, slots=True)
class SearchDoc:
    """One searchable interaction (a message, email, SMS, fax, transcript, note ...).

    ``id`` is the interaction id and the upsert key. ``at`` must be timezone-aware; it is kept
    in UTC. ``subject`` and ``text`` are the full-text fields; the rest are filters and facets.
    """

    id: str
    conversation_id: str
    contact_id: str
    channel: str
    direction: str
    kind: str
    at: datetime
    text: str = ""
    subject: str = ""
    queue: str | None = None
    agent: str | None = None
    has_recording: bool = False
    qa_score: float | None = None

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        _check_id(self.conversation_id, "conversation_id")
        _check_id(self.contact_id, "contact_id")
        if self.channel not in CHANNELS:
            raise InvalidDocError("channel", f"must be one of {sorted(CHANNELS)}")
        if self.direction not in DIRECTIONS:
            raise InvalidDocError("direction", f"must be one of {sorted(DIRECTIONS)}")
        _check_label(self.kind, "kind")
        _check_label(self.queue, "queue")
        _check_label(self.agent, "agent")
        if self.at.tzinfo is None:
            raise InvalidDocError("at", "must be timezone-aware")
        if self.at.tzinfo is not UTC:
            object.__setattr__(self, "at", self.at.astimezone(UTC))
        if self.qa_score is not None and not (self.qa_score == self.qa_score):  # NaN
            raise InvalidDocError("qa_score", "must be a number")


class Sort(StrEnum):
    """Result order. Relevance without query text falls back to ``TIME_DESC``."""

    RELEVANCE = "relevance"
    TIME_DESC = "time_desc"
    TIME_ASC = "time_asc"


@dataclass(frozen=True, slots=True)
class Visibility:
    """What a role may see, decided by the hub and enforced by the index.

    ``None`` for both means unrestricted. Otherwise a document is visible when its queue is in
    ``queues`` *or* its agent is in ``agents`` (an agent sees their own work plus the queues
    they serve). Facet counts and totals honour the restriction too, so nothing leaks.
    """

    queues: frozenset[str] | None = None
    agents: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.queues is None and self.agents is None


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Every set means "any of"; empty sets mean "no filter". Ranges: ``at_from`` inclusive,
    ``at_to`` exclusive (millisecond precision); ``qa_min``/``qa_max`` inclusive, and a QA range
    excludes interactions that have no score."""

    channels: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    contacts: frozenset[str] = frozenset()
    conversations: frozenset[str] = frozenset()
    directions: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    at_from: datetime | None = None
    at_to: datetime | None = None
    has_recording: bool | None = None
    qa_min: float | None = None
    qa_max: float | None = None

    def __post_init__(self) -> None:
        for name in ("at_from", "at_to"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidQueryError(name, "must be timezone-aware")
        if self.at_from and self.at_to and self.at_from > self.at_to:
            raise InvalidQueryError("at_to", "must not be before at_from")
        if self.qa_min is not None and self.qa_max is not None and self.qa_min > self.qa_max:
            raise InvalidQueryError("qa_max", "must not be below qa_min")
        unknown = self.channels - CHANNELS
        if unknown:
            raise InvalidQueryError("channels", f"unknown channel(s) {sorted(unknown)}")
        unknown = self.directions - DIRECTIONS
        if unknown:
            raise InvalidQueryError("directions", f"unknown direction(s) {sorted(unknown)}")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search request.

    ``text`` uses a small, engine-neutral syntax: words must all match (AND), ``"quoted
    phrases"`` match in order, ``-word`` excludes. Field syntax and operators of the engines are
    not exposed, so user input can never widen a query past ``filters`` and ``visibility``.
    ``cursor`` is the opaque ``next_cursor`` of the previous page of the same query.
    """

    text: str = ""
    filters: SearchFilters = field(default_factory=SearchFilters)
    visibility: Visibility = field(default_factory=Visibility)
    facets: frozenset[str] = frozenset()
    sort: Sort = Sort.RELEVANCE
    limit: int = 20
    cursor: str | None = None
    highlight: bool = True
    facet_size: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidQueryError("limit", f"must be between 1 and {MAX_LIMIT}")
        if not 1 <= self.facet_size <= 10_000:
            raise InvalidQueryError("facet_size", "must be between 1 and 10000")
        unknown = self.facets - FACET_FIELDS
        if unknown:
            raise InvalidQueryError("facets", f"unknown facet(s) {sorted(unknown)}")
        if len(self.text) > 1000:
            raise InvalidQueryError("text", "must be at most 1000 chars")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result: the stored document, its score (``None`` when sorted by time) and HTML
    snippets per matched field (``"subject"``/``"text"``): HTML-escaped text with the matched
    words in ``<mark>``; a field without a match has no entry."""

    doc: SearchDoc
    score: float | None
    highlights: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def id(self) -> str:
        return self.doc.id


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of hits. ``total`` counts every match of the query (not just this page); when
    ``total_exact`` is false it is a lower bound. ``facets`` maps a requested facet to value
    counts, largest first. ``next_cursor`` is ``None`` on the last page."""

    hits: tuple[SearchHit, ...]
    total: int
    total_exact: bool
    facets: Mapping[str, Mapping[str, int]]
    next_cursor: str | None


def facet_counts(pairs: Iterable[tuple[str, int]], size: int) -> Mapping[str, int]:
    """Facet value counts in the one order every backend returns: largest first, then by value;
    at most ``size`` values, zero counts dropped."""
    ordered = sorted(((k, n) for k, n in pairs if n > 0), key=lambda kn: (-kn[1], kn[0]))
    return MappingProxyType(dict(ordered[:size]))


def utc_ms(value: datetime) -> int:
    """Milliseconds since the epoch, the precision of time filters and time order."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
