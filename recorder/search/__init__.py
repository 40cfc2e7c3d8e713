"""Search over every recorded interaction, behind one :class:`SearchIndex` protocol.

Backends: :class:`TantivyIndex` (embedded, the default) and :class:`MeiliIndex`
(Meilisearch, for multi-process deployments). The hub builds one and passes it around.
"""

from recorder.search.errors import (
    IndexUnavailableError,
    InvalidDocError,
    InvalidQueryError,
    SchemaMismatchError,
    SearchError,
)
from recorder.search.meili import MeiliIndex
from recorder.search.protocol import SearchIndex
from recorder.search.tantivy_index import TantivyIndex
from recorder.search.types import (
    CHANNELS,
    DIRECTIONS,
    FACET_FIELDS,
    SearchDoc,
    SearchFilters,
    SearchHit,
    SearchQuery,
    SearchResult,
    Sort,
    Visibility,
)

__all__ = [
    "CHANNELS",
    "DIRECTIONS",
    "FACET_FIELDS",
    "IndexUnavailableError",
    "InvalidDocError",
    "InvalidQueryError",
    "MeiliIndex",
    "SchemaMismatchError",
    "SearchDoc",
    "SearchError",
    "SearchFilters",
    "SearchHit",
    "SearchIndex",
    "SearchQuery",
    "SearchResult",
    "Sort",
    "TantivyIndex",
    "Visibility",
]
