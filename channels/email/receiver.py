"""The IMAP receive loop shared by the email and fax channels (see channels.email.channel).

One loop per mailbox: connect, SELECT, drain everything above ``last_uid`` in batches, then
wait (IDLE, or NOOP polling) and drain again; on any transient failure drop the connection and
reconnect with exponential backoff (with jitter, capped). Per batch:

1. ``UID FETCH (BODY.PEEK[])``: PEEK, so reading never marks anything seen by itself. Batches
   are bounded by count and by bytes (``RFC822.SIZE`` is asked first); a mail above
   ``max_fetch_bytes`` is fetched as headers only and flagged ``body_not_fetched``. A producer
   task reads the next batch while this one is handled, so round trips overlap with parsing;
2. ``handle(raw)`` → ``Inbound`` for each message, then every ``sink(inbound)`` of the batch
   at once (each returns once the hub committed it; the hub group-commits them together), or
   one ``sink.ingest_many(inbounds)`` when the sink offers it (:mod:`~channels.email.batch_sink`);
3. flag the committed UIDs ``\\Seen`` (or MOVE them) with one command; move mail the handler
   refused (ParseError, or a handler bug) to quarantine;
4. only then persist ``(uidvalidity, last_uid)``. Steps 3-4 of a batch run in the background,
   in batch order, while the next batch is committed; a drain ends only when they are done.

A crash anywhere before step 4 re-delivers those messages on restart; the hub's ingest is
idempotent on ``(channel, external_id)`` (the Message-ID), so the effect is exactly-once. A sink
that raises stops the batch at that message (in UID order): everything before it is flagged and
recorded, the failing one and those after it stay unseen and are retried after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

from channels.base import ChannelError, Inbound, ParseError, PermanentChannelError, Sink
from channels.email.batch_sink import submit_batch
from channels.email.config import ImapConfig
from channels.email.imap import ImapSession
from channels.email.state import MailboxState, MailboxStateStore

log = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[Inbound]]
# Parses a whole fetched batch (e.g. in worker processes); per mail an Inbound or its ParseError.
BatchHandler = Callable[[list[bytes]], Awaitable[list[Inbound | ParseError]]]
_Parsing = asyncio.Future[list[Inbound | ParseError]] | None
_Item = tuple[list[int], list[tuple[int, bytes]], _Parsing] | BaseException | None
PARSE_FAILED_FLAG = "$ParseFailed"
# One RFC822.SIZE request covers this many UIDs (several fetch batches): a request per batch was
# a third round trip per batch on the one connection, in front of the next batch's FETCH. The
# answer is read by channels.email.imap_fetch (~40 bytes per UID), not aioimaplib's recursive
# line parser, so its length is no longer bounded by the recursion limit.
SIZES_PER_COMMAND = 1000


def _check_cancelled() -> None:
    """Re-raise a cancellation that a library swallowed.

    On Python 3.11 ``asyncio.wait_for`` (used throughout aioimaplib) returns the inner result
    instead of raising when the cancel and the completion race; the task's ``cancelling()``
    count still says it was asked to stop, so the loop honours that at every turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SinkFailedError(ChannelError):
    """The hub did not commit a message; the batch stops and is retried after a backoff."""

    code = "sink_failed"


class ImapReceiver:
    """Reads one mailbox into a sink; see the module docstring for the guarantees."""

    def __init__(
        self, channel_id: str, cfg: ImapConfig, state: MailboxStateStore, handle: Handler,
        handle_many: BatchHandler | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.cfg = cfg
        self.state = state
        self.handle = handle
        self.handle_many = handle_many
        self.connected = asyncio.Event()  # set while a session is up and drained once (tests)
        self.stats = {"ingested": 0, "quarantined": 0, "sink_failures": 0, "reconnects": 0}
        self._oversize: set[int] = set()  # UIDs of the current run fetched as headers only

    async def run(self, sink: Sink) -> None:
        """Receive until cancelled."""
        delay = self.cfg.backoff_initial_s
        while True:
            _check_cancelled()
            session = ImapSession(self.cfg)
            try:
                await session.connect()
                await self._serve(session, sink, on_ready=self._reset_backoff)
            except ChannelError as exc:
                level = logging.ERROR if isinstance(exc, PermanentChannelError) else logging.WARNING
                log.log(level, "mailbox %s: %s (%s); retrying in %.1fs", self.channel_id,
                        exc.code, exc, delay)
            except Exception:  # a bug or library surprise must not end the mailbox's loop
                log.exception("mailbox %s: unexpected error; retrying in %.1fs",
                              self.channel_id, delay)
            finally:
                self.connected.clear()
                await session.close()
            if self._backoff_reset:
                delay = self.cfg.backoff_initial_s
                self._backoff_reset = False
            self.stats["reconnects"] += 1
            _check_cancelled()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.cfg.backoff_max_s)

    _backoff_reset = False

    def _reset_backoff(self) -> None:
        self._backoff_reset = True

    async def _serve(self, session: ImapSession, sink: Sink, on_ready: Callable[[], None]) -> None:
        cfg = self.cfg
        if cfg.quarantine_folder:
            await session.ensure_folder(cfg.quarantine_folder)
        if cfg.after_ingest == "move":
            await session.ensure_folder(cfg.processed_folder)
        validity, uidnext = await session.select(cfg.mailbox)
        state = await self.state.get(self.channel_id, cfg.mailbox)
        if state is None or state.uidvalidity != validity:
            if state is not None:
                log.warning("mailbox %s: UIDVALIDITY changed %d -> %d, resyncing",
                            self.channel_id, state.uidvalidity, validity)
            state = await self._initial_sync(session, sink, validity, uidnext)
        use_idle = cfg.use_idle and session.supports_idle()
        while True:
            _check_cancelled()
            before = state.last_uid
            state = await self._drain(session, sink, state)
            self.connected.set()
            on_ready()
            if state.last_uid != before:
                continue  # mail may have arrived while we worked: look again before waiting
            if use_idle:
                await session.wait_for_change(cfg.idle_max_s)
            else:
                await asyncio.sleep(cfg.poll_interval_s)
                await session.noop()

    async def _initial_sync(
        self, session: ImapSession, sink: Sink, validity: int, uidnext: int
    ) -> MailboxState:
        """First contact (or new UIDVALIDITY): take what is waiting, then track by UID."""
        criteria = "UNSEEN" if self.cfg.initial_sync == "unseen" and (
            self.cfg.after_ingest == "seen"
        ) else "ALL"
        uids = await session.uid_search(criteria)
        baseline = max(uidnext - 1, max(uids, default=0))
        # No position is saved until the whole set is done (validity 0): if this is interrupted,
        # the next attempt searches UNSEEN again, and what was committed is already \Seen.
        await self._process(session, sink, 0, uids)
        state = MailboxState(validity, baseline)
        await self.state.set(self.channel_id, self.cfg.mailbox, state)
        return state

    async def _drain(
        self, session: ImapSession, sink: Sink, state: MailboxState
    ) -> MailboxState:
        uids = [u for u in await session.uid_search("UID", f"{state.last_uid + 1}:*")
                if u > state.last_uid]
        if not uids:
            return state
        last = await self._process(session, sink, state.uidvalidity, uids)
        return MailboxState(state.uidvalidity, max(last, state.last_uid))

    async def _process(
        self, session: ImapSession, sink: Sink, validity: int, uids: list[int]
    ) -> int:
        """Ingest ``uids`` in batches; returns the highest UID fully handled.

        A producer task reads (sizes, then bodies) ahead of the consumer that parses, commits
        and flags, so the server's work and the round trips overlap with ours; the queue holds
        one batch, so at most three batches are in memory.
        """
        last = 0
        self._oversize = set()
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=1)
        producer = asyncio.ensure_future(self._produce(session, uids, queue))
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                self._check_marking()
                chunk, fetched, parsing = item
                last = await self._ingest_batch(session, sink, validity, chunk, fetched, last,
                                                parsing)
            await self._settle_marking()
        finally:
            producer.cancel()
            if self._marking is not None and not self._marking.done():
                self._marking.cancel()  # unflagged, position not saved: re-read, deduped
            self._marking = None
            while not queue.empty():  # a batch read ahead but not handled: its parse is moot
                left = queue.get_nowait()
                if isinstance(left, tuple) and left[2] is not None:
                    left[2].cancel()
        return last

    async def _produce(self, session: ImapSession, uids: list[int],
                       queue: asyncio.Queue[_Item]) -> None:
        try:
            for start in range(0, len(uids), SIZES_PER_COMMAND):
                for batch in await self._batches(session, uids[start : start + SIZES_PER_COMMAND]):
                    fetched = sorted(await self._fetch(session, batch))
                    # Parsing starts now, so it overlaps with the commit of the previous batch.
                    parsing = (asyncio.ensure_future(self.handle_many([r for _, r in fetched]))
                               if self.handle_many is not None and fetched else None)
                    try:
                        await queue.put((batch, fetched, parsing))
                    except asyncio.CancelledError:
                        if parsing is not None:
                            parsing.cancel()
                        raise
            await queue.put(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, which raises it in its task
            await queue.put(exc)

    async def _batches(self, session: ImapSession, uids: list[int]) -> list[list[int]]:
        """Split ``uids`` into fetches of at most ``batch_size`` messages and ``batch_bytes``;
        mail above ``max_fetch_bytes`` goes alone and is fetched as headers only."""
        cfg = self.cfg
        sizes = await session.sizes(uids)
        self._oversize |= {u for u, s in sizes.items() if s > cfg.max_fetch_bytes}
        batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if current and (len(current) >= max(1, cfg.batch_size) or used + size > cfg.batch_bytes
                            or uid in self._oversize):
                batches.append(current)
                current, used = [], 0
            current.append(uid)
            used += size
            if uid in self._oversize:
                batches.append(current)
                current, used = [], 0
        if current:
            batches.append(current)
        return batches

    async def _fetch(self, session: ImapSession, batch: list[int]) -> list[tuple[int, bytes]]:
        if len(batch) == 1 and batch[0] in self._oversize:
            log.warning("mailbox %s: uid %d exceeds %d bytes, fetching its headers only",
                        self.channel_id, batch[0], self.cfg.max_fetch_bytes)
            return await session.fetch(batch, headers_only=True)
        return await session.fetch(batch)

    async def _ingest_batch(
        self, session: ImapSession, sink: Sink, validity: int, chunk: list[int],
        fetched: list[tuple[int, bytes]], last: int, parsing: _Parsing = None,
    ) -> int:
        """Hand one fetched batch to the sink at once, mark what committed, record the position.

        Every parsed message of the batch is submitted concurrently, so the hub's group commit
        writes the batch in a few transactions instead of one per message. Outcomes are read in
        UID order: the first failure ends the batch there. Messages after it that committed
        anyway are *not* flagged and the position stays below the failure, so they are fetched
        again with it and the hub's dedupe makes the second delivery a no-op.
        """
        parsed: list[tuple[int, Inbound]] = []
        quarantined: list[int] = []
        ready = await self._parsed_batch(fetched, parsing)
        for index, (uid, raw) in enumerate(fetched):
            _check_cancelled()
            try:
                result = ready[index] if ready is not None else None
                if isinstance(result, ParseError):
                    raise result
                inbound = result if result is not None else await self.handle(raw)
                if uid in self._oversize:
                    inbound = replace(inbound, metadata={**inbound.metadata,
                                                         "body_not_fetched": True})
            except ParseError as exc:
                log.warning("mailbox %s: uid %d unparseable (%s: %s), set aside",
                            self.channel_id, uid, exc.field, exc)
                quarantined.append(uid)
                continue
            except Exception:  # a handler bug must not block the mailbox behind one message
                log.exception("mailbox %s: uid %d failed in the handler, set aside",
                              self.channel_id, uid)
                quarantined.append(uid)
                continue
            parsed.append((uid, inbound))
        outcomes = await submit_batch(sink, [inbound for _, inbound in parsed])
        _check_cancelled()
        committed: list[int] = []
        failure: BaseException | None = None
        failed_uid = 0
        for (uid, _), outcome in zip(parsed, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):  # the hub's failure must not kill the loop
                failure, failed_uid = outcome, uid
                break
            committed.append(uid)
        if failure is not None:
            done = [u for u in chunk if u < failed_uid]
            last = max(done, default=last)
        else:
            last = max(chunk)
        record = MailboxState(validity, last) if validity and last else None
        if failure is not None:
            await self._settle_marking()
            await self._mark_and_record(session, committed, quarantined, record)
            self.stats["sink_failures"] += 1
            raise SinkFailedError(f"sink raised {type(failure).__name__} at uid {failed_uid}")
        self._defer_marking(lambda: self._mark_and_record(session, committed, quarantined, record))
        return last

    _marking: asyncio.Future[None] | None = None

    def _defer_marking(self, step: Callable[[], Awaitable[None]]) -> None:
        """Flag and record a committed batch in the background, strictly after the batches
        before it, so the next batch's commit does not wait for the STORE's round trip (which
        also queues behind the read-ahead FETCH on the one connection)."""
        previous = self._marking

        async def chained() -> None:
            if previous is not None:
                await previous  # an earlier batch failed: this one stays unmarked too
            await step()

        self._marking = asyncio.ensure_future(chained())

    def _check_marking(self) -> None:
        """Raise a failed background marking (the connection is likely gone) before going on."""
        if self._marking is not None and self._marking.done():
            marking, self._marking = self._marking, None
            marking.result()

    async def _settle_marking(self) -> None:
        if self._marking is not None:
            marking, self._marking = self._marking, None
            await marking

    async def _mark_and_record(self, session: ImapSession, committed: list[int], bad: list[int],
                               record: MailboxState | None) -> None:
        """Steps 3 and 4: flags first, the position only once the flags are on the server."""
        await self._mark(session, committed, bad)
        self.stats["ingested"] += len(committed)
        self.stats["quarantined"] += len(bad)
        if record is not None:
            await self.state.set(self.channel_id, self.cfg.mailbox, record)

    async def _parsed_batch(
        self, fetched: list[tuple[int, bytes]], parsing: _Parsing
    ) -> list[Inbound | ParseError] | None:
        """The batch handler's results, or None (then each mail goes through ``handle``)."""
        if parsing is None:
            return None
        try:
            ready = await parsing
        except asyncio.CancelledError:
            raise
        except Exception:  # a pool failure must not cost the batch: parse one by one instead
            log.exception("mailbox %s: batch parse failed, parsing one by one", self.channel_id)
            return None
        return ready if len(ready) == len(fetched) else None

    async def _mark(self, session: ImapSession, committed: list[int], bad: list[int]) -> None:
        cfg = self.cfg
        if cfg.after_ingest == "move":
            await session.move(committed, cfg.processed_folder)
        else:
            await session.flag(committed, "\\Seen")
        if cfg.quarantine_folder:
            await session.move(bad, cfg.quarantine_folder)
        else:
            await session.flag(bad, PARSE_FAILED_FLAG)
