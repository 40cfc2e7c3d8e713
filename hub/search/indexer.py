"""The outbox drainer: keeps the search index in step with the interaction log.

Theory of operation. A trigger on ``interactions`` (migration 0003) adds a ``search_outbox``
row in the same transaction as every insert; purge and retention add ``delete`` and
``purge_contact`` rows themselves. This loop takes the oldest batch of rows (on PostgreSQL
``FOR UPDATE SKIP LOCKED``, so several Meilisearch-backed hubs can drain side by side),
coalesces them per subject, reads the *current* rows (an interaction that no longer exists is
deleted from the index; an assignment, transfer, status change or QA evaluation re-labels its
conversation's docs, see :func:`hub.search.docs.relabels_conversation`), writes
the index and **commits it**, and only then deletes the outbox rows (on SQLite as one short
unit on the hub's group-commit writer: through the async pool the delete held the write lock,
which every chat ack's batch waits for, ~70 ms at a time under chat load). A crash anywhere before
that point replays the batch on the next start; replays are harmless because upserts are keyed
by interaction id and deleting an absent id is a no-op.

Latency: the loop wakes on the bus event ``interaction.created`` (after commit) and then waits
``debounce_s`` (0.25 s) so a burst shares one batch: each batch costs a few DB round trips and an
index commit whatever its size, so under chat load a short debounce made the drainer cost more
CPU per message than the chat path itself. The promise is "searchable within 1 s of the DB
commit": debounce + read + index commit stay well inside it. ``poll_s`` is the fallback for
inserts this process never hears of (other processes, the dispatcher's log entries).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncSession

from hub.actions.batch_writer import BatchWriter, writer_for
from hub.db.engine import SessionFactory
from hub.db.search_models import OP_DELETE, OP_PURGE_CONTACT, SearchOutbox
from hub.events import Event
from hub.search.docs import conversation_rows, load_rows, relabels_conversation, rows_to_docs
from recorder.search import IndexUnavailableError, SearchIndex

log = logging.getLogger(__name__)

WAKE_EVENTS = frozenset({"interaction.created"})
_OUTBOX = cast(Table, SearchOutbox.__table__)
_DELETE_DONE = delete(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one batch did (for logs, the CLI and tests)."""

    rows: int
    upserted: int
    deleted: int
    purged_contacts: int


class Indexer:
    """Drains ``search_outbox`` into a :class:`SearchIndex`; one per process that owns it."""

    def __init__(
        self,
        sessions: SessionFactory,
        index: SearchIndex,
        *,
        batch: int = 2000,
        poll_s: float = 0.5,
        debounce_s: float = 0.25,
        writer: BatchWriter | None = None,
        on_commit: Callable[[DrainResult], None] | None = None,
        sqlite_deletes: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        """``writer``: where SQLite's outbox deletes run (the hub passes its shared writer;
        without one the indexer makes its own). ``on_commit``: called once a batch is
        committed to the index (the index worker process tells the hub's reader).
        ``sqlite_deletes``: deletes drained SQLite outbox rows instead of ``writer`` (the index
        worker process hands them to the hub: a second process writing would meet the hub's
        writers in SQLite's busy handler, which sleeps up to 100 ms between tries while the
        hub's write queue waits behind it)."""
        self._on_commit = on_commit
        self._sqlite_deletes = sqlite_deletes
        self._sessions = sessions
        self._writer = writer
        self._index = index
        self._batch = batch
        self._poll_s = poll_s
        self._debounce_s = debounce_s
        self._wake = asyncio.Event()
        self.drained_rows = 0

    async def on_event(self, event: Event) -> None:
        """Bus listener: a new interaction was committed, drain soon."""
        if event.name in WAKE_EVENTS:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Drain forever; an unavailable index is logged and retried with backoff."""
        backoff = self._poll_s
        while True:
            try:
                while (await self.drain_once()).rows >= self._batch:
                    pass  # a full batch: more are waiting, keep going without sleeping
                backoff = self._poll_s
            except IndexUnavailableError as exc:
                backoff = min(backoff * 2, 30.0)
                log.error(
                    "search index unavailable (%s); outbox kept, retry in %.1f s",
                    exc.message,
                    backoff,
                )
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
                await asyncio.sleep(self._debounce_s)  # let a burst share one commit
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain_all(self) -> int:
        """Drain until the outbox is empty (CLI, tests); returns the rows processed."""
        total = 0
        while True:
            result = await self.drain_once()
            total += result.rows
            if result.rows == 0:
                return total

    async def drain_once(self) -> DrainResult:
        """Process one batch: index, commit the index, then delete the outbox rows."""
        async with self._sessions() as session:
            postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
            stmt = (
                select(SearchOutbox.id, SearchOutbox.op, SearchOutbox.interaction_id)
                .order_by(SearchOutbox.id)
                .limit(self._batch)
            )
            if postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            batch = (await session.execute(stmt)).all()
            if not batch:
                await session.rollback()
                return DrainResult(0, 0, 0, 0)
            result = await self._apply(session, batch)
            if self._on_commit is not None:
                self._on_commit(result)
            ids = [row.id for row in batch]
            if postgres:  # in the transaction that holds the rows' locks
                await session.execute(delete(SearchOutbox).where(SearchOutbox.id.in_(ids)))
                await session.commit()
            else:
                # SQLite: end the read transaction before writing (upgrading a read snapshot
                # to a write fails at once if another connection committed meanwhile)
                await session.rollback()
        if not postgres:
            if self._sqlite_deletes is not None:
                await self._sqlite_deletes(ids)
            else:
                await delete_drained(self._writer_or_own(), ids)
        self.drained_rows += len(batch)
        log.debug("search outbox: %s", result)
        return result

    def _writer_or_own(self) -> BatchWriter:
        if self._writer is None:
            self._writer = writer_for(self._sessions)
        return self._writer

    async def _apply(
        self, session: AsyncSession, batch: Sequence[Row[int, str, str]]
    ) -> DrainResult:
        last_op: dict[str, str] = {}
        purges: list[str] = []
        for row in batch:
            if row.op == OP_PURGE_CONTACT:
                purges.append(row.interaction_id)
            else:
                last_op[row.interaction_id] = row.op
        rows = await load_rows(session, [k for k, op in last_op.items() if op != OP_DELETE])
        found = {r.id for r in rows}
        relabel = {r.conversation_id for r in rows if relabels_conversation(r.kind, r.payload)}
        rows += [r for r in await conversation_rows(session, relabel) if r.id not in found]
        docs = rows_to_docs(rows)
        gone = [k for k in last_op if k not in found]
        for contact_id in dict.fromkeys(purges):
            await self._index.delete_by_contact(contact_id)
        if gone:
            await self._index.delete(gone)
        if docs:
            await self._index.upsert(docs)
        await self._index.commit()  # durable and searchable: only now may the rows go
        return DrainResult(len(batch), len(docs), len(gone), len(set(purges)))


async def delete_drained(writer: BatchWriter, ids: list[int]) -> None:
    """Delete outbox rows whose updates the index has committed (one short write unit)."""
    await writer.run(functools.partial(_delete_done, ids))


def _delete_done(ids: list[int], conn: Connection) -> None:
    conn.execute(_DELETE_DONE, {"ids": ids})
