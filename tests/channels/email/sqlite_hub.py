"""A stand-in for the hub's durable side on SQLite: a state store and an idempotent sink.

Used by the kill test, where the receive loop runs in a child process that is SIGKILLed in the
middle of a batch: what it committed must survive in a real file, as in the hub's DB.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from channels.base import Inbound, IngestReceipt
from channels.email.state import MailboxState

SCHEMA = """
CREATE TABLE IF NOT EXISTS mailbox_state (channel TEXT, mailbox TEXT, uidvalidity INTEGER,
  last_uid INTEGER, PRIMARY KEY (channel, mailbox));
CREATE TABLE IF NOT EXISTS inbound (external_id TEXT PRIMARY KEY, subject TEXT);
CREATE TABLE IF NOT EXISTS deliveries (n INTEGER PRIMARY KEY AUTOINCREMENT, external_id TEXT);
"""


class SqliteHub:
    """State store + sink on one SQLite file (every call commits before returning)."""

    def __init__(self, path: Path, delay_s: float = 0.0) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.delay_s = delay_s
        # The receiver hands a whole batch to the sink concurrently; committing one message at
        # a time (each after its "work") keeps commits spread across the batch, so the kill
        # test can stop the process with part of a batch committed, not only on its edges.
        self._one_at_a_time = asyncio.Lock()

    async def get(self, channel_id: str, mailbox: str) -> MailboxState | None:
        row = self.db.execute(
            "SELECT uidvalidity, last_uid FROM mailbox_state WHERE channel=? AND mailbox=?",
            (channel_id, mailbox),
        ).fetchone()
        return MailboxState(int(row[0]), int(row[1])) if row else None

    async def set(self, channel_id: str, mailbox: str, state: MailboxState) -> None:
        self.db.execute("INSERT OR REPLACE INTO mailbox_state VALUES (?, ?, ?, ?)",
                        (channel_id, mailbox, state.uidvalidity, state.last_uid))

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        async with self._one_at_a_time:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # a hub doing real work per message
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO deliveries (external_id) VALUES (?)",
                            (inbound.external_id,))
            cur = self.db.execute("INSERT OR IGNORE INTO inbound VALUES (?, ?)",
                                  (inbound.external_id, inbound.subject))
            self.db.execute("COMMIT")
        return IngestReceipt(inbound.external_id, "c", "k", cur.rowcount == 1)

    def counts(self) -> tuple[int, int]:
        stored = self.db.execute("SELECT COUNT(*) FROM inbound").fetchone()[0]
        delivered = self.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        return int(stored), int(delivered)
