"""Search errors: data with a stable ``code``, rendered by the API as ``{code, message, data}``."""

from __future__ import annotations


class SearchError(Exception):
    """Base of every search failure. ``code`` is stable; ``field`` names the culprit, if any."""

    code = "search_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_data(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "data": {"field": self.field}}


class InvalidDocError(SearchError, ValueError):
    """A :class:`SearchDoc` field is invalid; nothing was written."""

    code = "search_invalid_doc"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field)


class InvalidQueryError(SearchError, ValueError):
    """A query, filter or cursor is invalid (the API answers 400)."""

    code = "search_invalid_query"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field)


class IndexUnavailableError(SearchError):
    """The backend cannot be reached or refused the operation; retry later (the outbox keeps
    the pending updates)."""

    code = "search_unavailable"


class SchemaMismatchError(SearchError):
    """The on-disk index was built with another schema version; rebuild it (``reindex``)."""

    code = "search_schema_mismatch"
