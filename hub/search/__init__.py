"""The hub side of search: the outbox drainer, role visibility, reindex, purge and retention.

The engine itself lives in :mod:`recorder.search`; this package turns the hub's tables into
:class:`~recorder.search.SearchDoc` values and keeps the index in step with the database.
"""
