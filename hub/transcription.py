"""Call transcripts: every recorded call audio becomes a ``transcript`` interaction, once.

Theory of operation. Storing an audio attachment on a ``voice`` interaction (the bridge
recording, a voicemail) adds a ``transcription_jobs`` row in the same transaction (a trigger,
migration 0007), so a crash between recording and transcript loses nothing. This worker claims
the oldest due job (on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several hub processes can share
the work) and leases it by pushing ``next_attempt_at`` past the expected decode time, reads the
WAV from the media store and hands it to a :class:`recorder.transcribe.Transcriber` (which runs
off the event loop: the call path is never blocked by a transcript).

The transcript is appended to the recording's conversation with ``dedupe_key``
``transcript:<recording interaction id>`` in the transaction that marks the job ``done``: even a
lease that expired under a slow decode, or two processes racing, store one transcript. Its
``text`` is indexed like any interaction (the search outbox trigger), so ``/api/search`` finds
what was said; its payload carries the timed ``segments`` for the QA page's player. Audio
without speech (a tone, silence) completes the job with no transcript entry.

Failures: a transient error (worker crash, I/O) is retried with exponential backoff up to
``max_attempts``; a permanent one (not audio, unsupported language, file gone) or the last
attempt marks the job ``failed`` with its error and appends an ``event`` interaction saying so,
so QA sees why a call has no transcript. ``contacthub transcribe --missing`` requeues those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import exists, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from hub.actions.conversations import conversation_rooms
from hub.actions.log import append, interaction_dict
from hub.db.base import utcnow
from hub.db.engine import SessionFactory
from hub.db.models import AttachmentRecord, Conversation, Interaction
from hub.db.transcript_models import JOB_DONE, JOB_FAILED, JOB_PENDING, TranscriptionJob
from hub.domain import ActorType, Direction, InteractionKind
from hub.events import Event, EventBus
from recorder.media.store import MediaError, MediaStore
from recorder.transcribe import Transcriber, Transcript, TranscriptionError

log = logging.getLogger(__name__)

ENGINE = "pocketsphinx"
MAX_TEXT = 200_000
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Claimed:
    """One leased job and what it needs."""

    interaction_id: str
    conversation_id: str
    channel: str
    attempt: int
    sha256: str | None


def segments_payload(transcript: Transcript) -> list[dict[str, Any]]:
    """The JSON shape of the segments (what the QA page reads)."""
    return [
        {"start_s": s.start_s, "end_s": s.end_s, "text": s.text, "speaker": s.speaker,
         "confidence": s.confidence}
        for s in transcript.segments
    ]  # fmt: skip


def backoff_s(attempt: int, base_s: float) -> float:
    """Delay before retry ``attempt + 1``: ``base * 2^(attempt-1)``, at most six hours."""
    return float(min(base_s * 2 ** max(0, attempt - 1), 6 * 3600))


class TranscriptionWorker:
    """Drains ``transcription_jobs``; one per hub process that transcribes."""

    def __init__(
        self,
        sessions: SessionFactory,
        bus: EventBus | None,
        media: MediaStore,
        transcriber: Transcriber,
        *,
        poll_s: float = 5.0,
        max_attempts: int = 5,
        retry_base_s: float = 30.0,
        lease_s: float = 900.0,
        postgres: bool = False,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._media = media
        self._transcriber = transcriber
        self._poll_s = poll_s
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._lease_s = lease_s
        self._postgres = postgres
        self._wake = asyncio.Event()
        self.done = 0
        self.failed = 0

    async def on_event(self, event: Event) -> None:
        """Bus listener: a voice interaction with a file was committed, look for work now."""
        if (event.name == "interaction.created" and event.data.get("channel") == "voice"
                and event.data.get("attachments")):  # fmt: skip
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Work forever; database trouble is logged and retried after ``poll_s``."""
        while True:
            self._wake.clear()  # before looking: a wake while working is not lost
            try:
                worked = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transcription worker: a job round failed; retrying")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def run_once(self) -> bool:
        """Claim and process one due job; False when none is due."""
        job = await self._claim()
        if job is None:
            return False
        await self._process(job)
        return True

    async def drain(self) -> int:
        """Process due jobs until none is left (the CLI backfill); returns how many ran."""
        n = 0
        while await self.run_once():
            n += 1
        return n

    async def _claim(self) -> Claimed | None:
        now = utcnow()
        async with self._sessions() as session, session.begin():
            query = (
                select(TranscriptionJob)
                .where(TranscriptionJob.status == JOB_PENDING,
                       TranscriptionJob.next_attempt_at <= now)
                .order_by(TranscriptionJob.next_attempt_at)
                .limit(1)
            )  # fmt: skip
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            job = (await session.execute(query)).scalar_one_or_none()
            if job is None:
                return None
            if job.attempts >= self._max_attempts:  # leases ran out: the process died each time
                job.status = JOB_FAILED
                job.last_error = f"gave up after {job.attempts} interrupted attempt(s)"
                return None
            job.attempts += 1
            job.next_attempt_at = now + timedelta(seconds=self._lease_s)
            ix = await session.get(Interaction, job.interaction_id)
            if ix is None:  # purged where foreign keys are not enforced: drop the orphan
                await session.delete(job)
                return None
            audio = next(
                (a for a in ix.attachments if a.content_type.startswith("audio/")), None
            )
            return Claimed(ix.id, ix.conversation_id, ix.channel, job.attempts,
                           audio.sha256 if audio is not None else None)  # fmt: skip

    async def _process(self, job: Claimed) -> None:
        if job.sha256 is None:
            await self._fail(job, TranscriptionError("the interaction has no audio",
                                                     transient=False))  # fmt: skip
            return
        try:
            path = self._media.path(job.sha256)
            if not await self._media.exists(job.sha256):
                raise TranscriptionError("the recording is not in the media store",
                                         transient=False)  # fmt: skip
            transcript = await self._transcriber.transcribe(path)
        except TranscriptionError as exc:
            await self._fail(job, exc)
        except (MediaError, OSError) as exc:
            await self._fail(job, TranscriptionError(f"media: {exc}", transient=True))
        except Exception as exc:  # an engine bug must not stop the worker
            log.exception("transcription of %s crashed", job.interaction_id)
            await self._fail(job, TranscriptionError(f"engine error: {exc!r}", transient=True))
        else:
            await self._store(job, transcript)

    async def _store(self, job: Claimed, transcript: Transcript) -> None:
        events: list[Event] = []
        try:
            async with self._sessions() as session, session.begin():
                row_job = await session.get(TranscriptionJob, job.interaction_id)
                conv = await session.get(Conversation, job.conversation_id)
                if row_job is None or conv is None or row_job.status == JOB_DONE:
                    return
                row_job.status = JOB_DONE
                row_job.last_error = None
                if not transcript.text:  # no speech (a tone, silence): nothing to show or find
                    row_job.last_error = "no speech found"
                    return
                row = await append(
                    session, conv.id, kind=InteractionKind.TRANSCRIPT,
                    direction=Direction.INTERNAL, channel=job.channel,
                    actor_type=ActorType.SYSTEM, text=transcript.text[:MAX_TEXT],
                    dedupe_key=f"transcript:{job.interaction_id}",
                    payload={"transcript": {
                        "recording_id": job.interaction_id, "sha256": job.sha256,
                        "engine": ENGINE, "language": transcript.language,
                        "segments": segments_payload(transcript),
                    }},
                )  # fmt: skip
                await session.flush()
                row_job.transcript_id = row.id
                events.append(Event("interaction.created", interaction_dict(row),
                                    rooms=conversation_rooms(conv)))  # fmt: skip
        except IntegrityError:  # another process stored it first: that one counts
            log.info("transcript of %s already stored elsewhere", job.interaction_id)
            await self._mark_done_elsewhere(job.interaction_id)
            return
        self.done += 1
        log.info("transcribed %s: %d segments", job.interaction_id, len(transcript.segments))
        if self._bus is not None and events:
            await self._bus.publish(events)

    async def _mark_done_elsewhere(self, interaction_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(TranscriptionJob)
                .where(TranscriptionJob.interaction_id == interaction_id)
                .values(status=JOB_DONE, updated_at=utcnow())
            )

    async def _fail(self, job: Claimed, err: TranscriptionError) -> None:
        message = str(err)[:MAX_ERROR]
        final = not err.transient or job.attempt >= self._max_attempts
        events: list[Event] = []
        async with self._sessions() as session, session.begin():
            row_job = await session.get(TranscriptionJob, job.interaction_id)
            if row_job is None or row_job.status != JOB_PENDING:
                return
            row_job.last_error = message
            if not final:
                delay = backoff_s(job.attempt, self._retry_base_s)
                row_job.next_attempt_at = utcnow() + timedelta(seconds=delay)
                log.warning("transcription of %s failed (attempt %d, retry in %.0f s): %s",
                            job.interaction_id, job.attempt, delay, message)  # fmt: skip
                return
            row_job.status = JOB_FAILED
            conv = await session.get(Conversation, job.conversation_id)
            if conv is not None:
                row = await append(
                    session, conv.id, kind=InteractionKind.EVENT, direction=Direction.INTERNAL,
                    channel=job.channel, actor_type=ActorType.SYSTEM,
                    payload={"transcript": {"status": "failed", "recording_id": job.interaction_id,
                                            "code": err.code, "error": message,
                                            "attempts": job.attempt}},
                )  # fmt: skip
                await session.flush()
                events.append(Event("interaction.created", interaction_dict(row),
                                    rooms=conversation_rooms(conv)))  # fmt: skip
        self.failed += 1
        log.error("transcription of %s failed for good after %d attempt(s): %s",
                  job.interaction_id, job.attempt, message)  # fmt: skip
        if self._bus is not None and events:
            await self._bus.publish(events)


async def requeue_missing(sessions: SessionFactory) -> tuple[int, int]:
    """Backfill: a job for every voice audio attachment without one (e.g. stored while the
    trigger did not exist) and ``failed`` jobs back to ``pending``. Returns (added, requeued)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        has_job = exists().where(
            TranscriptionJob.interaction_id == AttachmentRecord.interaction_id
        )
        missing = (
            await session.execute(
                select(AttachmentRecord.interaction_id)
                .distinct()
                .join(Interaction, Interaction.id == AttachmentRecord.interaction_id)
                .where(
                    AttachmentRecord.content_type.like("audio/%"),
                    Interaction.channel == "voice",
                    ~has_job,
                )
            )
        ).scalars().all()
        for interaction_id in missing:
            await session.execute(insert(TranscriptionJob).values(
                interaction_id=interaction_id, status=JOB_PENDING, attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now))  # fmt: skip
        result = await session.execute(
            update(TranscriptionJob).where(TranscriptionJob.status == JOB_FAILED)
            .values(status=JOB_PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        )  # fmt: skip
        requeued = cast(CursorResult[Any], result).rowcount
    return len(missing), int(requeued or 0)


def build_transcriber(mode: str) -> Transcriber | None:
    """The engine for ``HUB_TRANSCRIBE`` (``on``/``off``/``auto``): None when off, or when
    ``auto`` and pocketsphinx is not installed; ``on`` without it is a startup error."""
    if mode == "off":
        return None
    from recorder import transcribe_sphinx

    if not transcribe_sphinx.available():
        if mode == "on":
            raise RuntimeError("HUB_TRANSCRIBE=on but pocketsphinx is not installed "
                               "(pip install pocketsphinx)")  # fmt: skip
        log.info("call transcripts off: pocketsphinx is not installed")
        return None
    return transcribe_sphinx.SphinxTranscriber()


class TranscriptionService:
    """The worker and its engine as the lifespan starts and stops them."""

    def __init__(self, worker: TranscriptionWorker, transcriber: Transcriber) -> None:
        self.worker = worker
        self._transcriber = transcriber
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, mode: str, sessions: SessionFactory, bus: EventBus, media: MediaStore, *,
               postgres: bool) -> TranscriptionService | None:  # fmt: skip
        transcriber = build_transcriber(mode)
        if transcriber is None:
            return None
        worker = TranscriptionWorker(sessions, bus, media, transcriber, postgres=postgres)
        bus.subscribe(worker.on_event)
        return cls(worker, transcriber)

    def start(
        self,
        supervise: Callable[[str, Callable[[], Awaitable[None]]], Coroutine[Any, Any, None]],
    ) -> None:
        self._task = asyncio.create_task(supervise("transcription", self.worker.run))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        close = getattr(self._transcriber, "aclose", None)
        if close is not None:
            await close()


async def backfill(sessions: SessionFactory, media: MediaStore, *,
                   progress: Callable[[str], None]) -> tuple[int, int, int, int]:  # fmt: skip
    """``contacthub transcribe --missing``: queue what lacks a job, requeue failures, transcribe
    everything due. Returns (jobs added, requeued, transcribed, failed). Safe next to a running
    hub: both lease jobs, and the dedupe key keeps one transcript per recording."""
    added, requeued = await requeue_missing(sessions)
    progress(f"{added} recording(s) queued, {requeued} failed job(s) requeued")
    transcriber = build_transcriber("on")
    assert transcriber is not None
    worker = TranscriptionWorker(sessions, None, media, transcriber)
    try:
        while await worker.run_once():
            progress(f"{worker.done} transcribed, {worker.failed} failed")
    finally:
        close = getattr(transcriber, "aclose", None)
        if close is not None:
            await close()
    return added, requeued, worker.done, worker.failed
