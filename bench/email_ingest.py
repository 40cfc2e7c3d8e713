"""Email ingest from a real Dovecot with N waiting messages (default 10,000).

Three rates from one throwaway Dovecot, in the same run:
- ``raw_fetch_per_s``: a bare aioimaplib ``UID FETCH BODY.PEEK[]`` of the mailbox (the ceiling);
- ``adapter_per_s``: the email channel's receive loop (fetch, parse, flag ``\\Seen``, advance the
  UID) into an in-memory sink: what the adapter itself costs;
- ``ingest_per_s``: the same loop into the hub's real ingest on SQLite (dedupe, contact,
  threading, rules; each fetched batch is handed over at once and group-committed): what a
  deployment gets.
The parse worker pool (channels/email/parse_pool.py) is started before the timed runs, as it
is in a hub that has drained one backlog; ``parse_workers`` says how many it has.
``cpu_ms_per_message``: CPU used per message by this process (the raw fetch; the ingest, with
the hub's SQLite writer thread) and by the parse workers; Dovecot's own CPU is not counted.
``hub_takes_batches``: whether the hub's ingest takes whole batches (``ingest_many``, see
channels/email/batch_sink.py) or one call per mail.
``replies_per_s``: agent replies composed and sent through a local SMTP server (aiosmtpd).
The process runs under the hub's garbage-collector thresholds (``hub.gc_policy``, set by the
hub's lifespan while it serves), all three measurements alike; ``gc_thresholds`` says which.
``--rounds N`` repeats the three measurements (fresh mailboxes, one hub database) and reports
the best rate of each and the least CPU: on a shared machine the best of a few rounds is the
least disturbed one (``rounds`` lists each round's own ratios).
Prints one JSON object. Needs dovecot-imapd (``bash tests/servers/dovecot.sh``) and root.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import aioimaplib  # noqa: E402

from channels.base import (  # noqa: E402
    Address,
    AddressKind,
    ChannelKind,
    Inbound,
    IngestReceipt,
    Outbound,
)
from channels.email import (  # noqa: E402
    EmailChannel,
    EmailConfig,
    ImapConfig,
    InMemoryMailboxStateStore,
    SmtpConfig,
)
from channels.email.batch_sink import BatchSink  # noqa: E402
from channels.email.imap import parse_fetch  # noqa: E402
from channels.email.parse_pool import default_workers, start_pool, worker_pids  # noqa: E402
from hub.actions.ingest import Ingestor  # noqa: E402
from hub.db.engine import make_engine, make_session_factory  # noqa: E402
from hub.db.migrate import upgrade  # noqa: E402
from hub.events import EventBus  # noqa: E402
from hub.gc_policy import tune_for_serving  # noqa: E402
from hub.settings import Settings  # noqa: E402
from tests.servers.dovecot import Dovecot, fill_maildir, start_dovecot  # noqa: E402
from tests.servers.smtpd_server import smtp_server  # noqa: E402

BODY = "Hello, I have a question about my order. " * 20


def message(i: int, tag: str) -> bytes:
    return (
        f"From: Customer {i} <customer{i}@example.com>\r\nTo: support@example.com\r\n"
        f"Subject: Question {i}\r\nMessage-ID: <{tag}-{i}@example.com>\r\n"
        f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8"
        f"\r\n\r\n{BODY}\r\n"
    ).encode()


def mailbox(server: Dovecot, count: int, tag: str) -> str:
    user = server.add_user()
    fill_maildir(server, user, [message(i, tag) for i in range(count)])
    conn = server.client(user)  # let Dovecot index the new mail outside the measurement
    conn.select("INBOX")
    conn.logout()
    return user


def config(server: Dovecot, user: str) -> EmailConfig:
    imap = ImapConfig(
        host=server.host,
        port=server.port,
        username=user,
        password=server.users[user],
        security="none",
        allow_plaintext_auth=True,
        poll_interval_s=0.2,
    )
    return EmailConfig(channel_id="support@example.com", address="support@example.com", imap=imap)


async def raw_fetch(server: Dovecot, user: str, batch: int = 200) -> float:
    client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(user, server.users[user])
    await client.select("INBOX")
    start, got, uid = time.perf_counter(), 0, 1
    while True:
        response = await client.uid("fetch", f"{uid}:{uid + batch - 1}", "(UID BODY.PEEK[])")
        items = parse_fetch(list(response.lines))
        if not items:
            break
        got += len(items)
        uid += batch
    elapsed = time.perf_counter() - start
    await client.logout()
    return got / elapsed


def cpu_s() -> tuple[float, float]:
    """CPU seconds used so far by this process (all threads) and by the parse workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    workers = 0.0
    for pid in worker_pids():
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            workers += (int(fields[11]) + int(fields[12])) / ticks
    return time.process_time(), workers


class CountingSink:
    def __init__(self, inner: Any = None) -> None:
        self.inner, self.count, self.done = inner, 0, asyncio.Event()
        self.target = 0

    async def __call__(self, inbound: Inbound, /) -> IngestReceipt:
        receipt = (
            await self.inner(inbound)
            if self.inner is not None
            else IngestReceipt(inbound.external_id, "c", "k", True)
        )
        self.count += 1
        if self.count >= self.target:
            self.done.set()
        return receipt


class CountingBatchSink(CountingSink):
    """The same, for an ingest that takes whole batches (channels.email.batch_sink)."""

    async def ingest_many(self, inbounds: list[Inbound], /) -> list[IngestReceipt | BaseException]:
        outcomes: list[IngestReceipt | BaseException] = await self.inner.ingest_many(inbounds)
        self.count += sum(not isinstance(o, BaseException) for o in outcomes)
        if self.count >= self.target:
            self.done.set()
        return outcomes


def counting(inner: Any) -> CountingSink:
    return CountingBatchSink(inner) if isinstance(inner, BatchSink) else CountingSink(inner)


async def drain(server: Dovecot, user: str, count: int, sink: CountingSink) -> float:
    sink.target = count
    channel = EmailChannel(config(server, user), InMemoryMailboxStateStore())
    start = time.perf_counter()
    task = asyncio.create_task(channel.run(sink))
    try:
        await asyncio.wait_for(sink.done.wait(), timeout=600)
        return count / (time.perf_counter() - start)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def replies(count: int) -> float:
    with smtp_server() as smtp:
        cfg = EmailConfig(
            channel_id="support@example.com",
            address="support@example.com",
            imap=ImapConfig(host="unused", username="x", password="x"),
            smtp=SmtpConfig(host=smtp.host, port=smtp.port, security="none"),
        )
        channel = EmailChannel(cfg, InMemoryMailboxStateStore())
        start = time.perf_counter()
        for i in range(count):
            await channel.send(
                Outbound(
                    channel=ChannelKind.EMAIL,
                    channel_id="support@example.com",
                    conversation_id="cv_bench",
                    to=Address(AddressKind.EMAIL, f"c{i}@example.com"),
                    text="Thanks, we are on it.",
                    idempotency_key=f"reply-{i}",
                    subject="Question",
                    author_name="Agent",
                )
            )
        rate = count / (time.perf_counter() - start)
        assert len(smtp.handler.messages) == count
        return rate


async def one_round(server: Dovecot, n: int, ingestor: Ingestor, r: int) -> dict[str, float]:
    """Raw fetch, adapter and hub ingest, each on a fresh mailbox; rates and CPU s."""
    out: dict[str, float] = {}
    box = mailbox(server, n, f"raw{r}")
    before = cpu_s()
    out["raw"] = await raw_fetch(server, box, 200)
    out["cpu_raw_fetch"] = cpu_s()[0] - before[0]
    out["adapter"] = await drain(server, mailbox(server, n, f"adapter{r}"), n, CountingSink())
    box = mailbox(server, n, f"hub{r}")
    before = cpu_s()
    out["hub"] = await drain(server, box, n, counting(ingestor))
    after = cpu_s()
    out["cpu_ingest_hub_process"] = after[0] - before[0]
    out["cpu_ingest_parse_workers"] = after[1] - before[1]
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--replies", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the three measurements; report the best rates (see README)")
    args = parser.parse_args()
    tune_for_serving()  # as the hub process does while it serves (hub/app.py's lifespan)
    server = start_dovecot()
    await start_pool()
    runs: list[dict[str, float]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), secret_key="bench", log_level="WARNING")
            engine = make_engine(settings)
            await upgrade(engine)
            ingestor = Ingestor(
                make_session_factory(engine),
                EventBus(),
                lambda data, ct: asyncio.sleep(0, result="0" * 64),
            )
            for r in range(max(1, args.rounds)):
                runs.append(await one_round(server, args.messages, ingestor, r))
            await engine.dispose()
        sent = await replies(args.replies)
    finally:
        server.stop()
    raw, adapter, hub = (max(run[k] for run in runs) for k in ("raw", "adapter", "hub"))
    cpu = {k[4:]: min(run[k] for run in runs) for k in runs[0] if k.startswith("cpu_")}
    print(
        json.dumps(
            {
                "messages": args.messages,
                "ingest_per_s": round(hub, 1),
                "adapter_per_s": round(adapter, 1),
                "raw_fetch_per_s": round(raw, 1),
                "ingest_over_raw": round(hub / raw, 3),
                "adapter_over_raw": round(adapter / raw, 3),
                "replies_per_s": round(sent, 1),
                "parse_workers": default_workers(),
                "hub_takes_batches": isinstance(ingestor, BatchSink),
                "gc_thresholds": list(gc.get_threshold()),
                "cpu_ms_per_message": {k: round(v * 1000 / args.messages, 3)
                                       for k, v in cpu.items()},
                "rounds": [{"ingest_over_raw": round(run["hub"] / run["raw"], 3),
                            "adapter_over_raw": round(run["adapter"] / run["raw"], 3)}
                           for run in runs],
                "note": "ingest_per_s: through the hub ingest on SQLite, each fetched batch "
                "group-committed; adapter_per_s into an in-memory sink; raw_fetch_per_s: bare "
                "aioimaplib (its quadratic FETCH completion check included); with --rounds N: "
                "best rate of each over the rounds, least CPU",
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
