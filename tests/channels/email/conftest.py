"""Fixtures for the email channel tests: a real Dovecot (tests/servers/dovecot.py) and helpers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.base import Inbound, IngestReceipt
from channels.email.config import EmailConfig, ImapConfig, SmtpConfig
from channels.email.parse import ParseOptions
from tests.servers.dovecot import Dovecot, dovecot

__all__ = ["BatchRecordingSink", "RecordingSink", "dovecot", "imap_config", "make_mail"]


def make_mail(i: int, *, tag: str = "m", extra_headers: str = "", body: str = "") -> bytes:
    return (
        f"From: Customer {i} <customer{i}@example.com>\r\n"
        f"To: support@contacthub.test\r\n"
        f"Subject: Question {i}\r\n"
        f"Message-ID: <{tag}-{i}@example.com>\r\n"
        f"Date: Mon, 16 Nov 2026 10:00:00 +0000\r\n"
        f"{extra_headers}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body or f'Body of message {i}.'}\r\n"
    ).encode()


def imap_config(server: Dovecot, user: str, **overrides: object) -> EmailConfig:
    imap = ImapConfig(
        host=server.host, port=server.port, username=user, password=server.users[user],
        security="none", allow_plaintext_auth=True, backoff_initial_s=0.05, backoff_max_s=0.5,
        idle_max_s=5.0, poll_interval_s=0.2, timeout_s=10.0,
    )
    smtp = overrides.pop("smtp", None)
    sent_folder = overrides.pop("sent_folder", None)
    if overrides:
        imap = dataclasses.replace(imap, **overrides)  # type: ignore[arg-type]
    return EmailConfig(
        channel_id="support", address="support@contacthub.test", imap=imap,
        smtp=smtp if isinstance(smtp, SmtpConfig) else None,
        sent_folder=sent_folder if isinstance(sent_folder, str) else None,
        display_name="Support", parse=ParseOptions(),
    )


@dataclass
class RecordingSink:
    """Stands in for the hub's ingest: idempotent on external_id, like the real one.

    ``fail`` decides per call whether to raise (a hub that could not commit).
    """

    stored: dict[str, Inbound] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail: Callable[[Inbound, int], bool] | None = None
    before_commit: Callable[[Inbound], Awaitable[None]] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        self.calls.append(inbound.external_id)
        if self.fail is not None and self.fail(inbound, len(self.calls)):
            raise RuntimeError("database is locked")
        if self.before_commit is not None:
            await self.before_commit(inbound)
        created = inbound.external_id not in self.stored
        self.stored.setdefault(inbound.external_id, inbound)
        self.arrived.set()
        return IngestReceipt(f"i-{len(self.stored)}", "c-1", "k-1", created)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async def until() -> None:
            while len(self.stored) < count:
                self.arrived.clear()
                if len(self.stored) >= count:
                    return
                await self.arrived.wait()

        await asyncio.wait_for(until(), timeout)


@dataclass
class BatchRecordingSink(RecordingSink):
    """The same ingest taking whole batches (``channels.email.batch_sink.BatchSink``): items in
    order, each one's failure returned in its place. ``raise_batch`` decides per call whether
    the whole call raises instead (a hub that failed before looking at the items)."""

    batches: list[list[str]] = field(default_factory=list)
    raise_batch: Callable[[int], bool] | None = None

    async def ingest_many(self, inbounds: list[Inbound], /) -> list[IngestReceipt | BaseException]:
        self.batches.append([i.external_id for i in inbounds])
        if self.raise_batch is not None and self.raise_batch(len(self.batches)):
            raise RuntimeError("database is locked")
        out: list[IngestReceipt | BaseException] = []
        for inbound in inbounds:
            try:
                out.append(await self(inbound))
            except Exception as exc:
                out.append(exc)
        return out
