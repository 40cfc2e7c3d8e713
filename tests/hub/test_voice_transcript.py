"""Call transcripts through the real hub: recording in, one searchable transcript out.

The recordings are real speech (espeak-ng at telephone quality, see
``tests/recorder/test_transcribe_sphinx.py``) transcribed by the real PocketSphinx engine. Only
the retry test uses a scripted engine (labelled below): it is about the worker's bookkeeping
when an engine fails, which a real engine cannot be made to do on cue.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from channels.base import Address, AddressKind, Attachment, ChannelKind, Inbound, InboundKind
from hub.actions.ingest import Ingestor
from hub.cli import main as cli_main
from hub.db.base import utcnow
from hub.db.models import Interaction, TranscriptionJob
from hub.domain import Role
from hub.settings import Settings, SettingsError
from hub.transcription import (
    TranscriptionService,
    TranscriptionWorker,
    backoff_s,
    build_transcriber,
    requeue_missing,
)
from recorder.media import MediaStore
from recorder.transcribe import Segment, Transcript, TranscriptionError
from recorder.transcribe_sphinx import SphinxTranscriber
from tests.conftest import Db
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_search_outbox import make_ingestor
from tests.hub.voice_helpers import (
    CALLER,
    NUMBER,
    SQLITE_ONLY,
    agent_phone,
    asterisk_fixture,
    call_in,
    caller_values,
    ready_agent,
    setup_center,
    voice_channel,
    wait_recording,
    wait_status,
)
from tests.recorder.test_transcribe_sphinx import PHRASE_1, PHRASE_2, concat, phone_wav
from tests.servers.asterisk import AsteriskTestbed, write_rtp_pcap


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("transcript")
    first = phone_wav(PHRASE_1, d / "one.wav", pad_before_s=0.5, pad_after_s=1.5)
    second = phone_wav(PHRASE_2, d / "two.wav", pad_after_s=0.5)
    return concat([first, second], d / "call.wav").read_bytes()


async def record_call(
    ingest: Ingestor, call_id: str, wav: bytes, caller: str = CALLER
) -> tuple[str, str]:
    """What the voice channel hands the hub for one answered call: the call, then its recording.
    Returns (conversation id, recording interaction id)."""
    sender = Address(AddressKind.PHONE, caller)
    call = await ingest(Inbound(
        channel=ChannelKind.VOICE, channel_id=NUMBER, external_id=call_id, sender=sender,
        kind=InboundKind.CALL, metadata={"queue": "general"},
    ))  # fmt: skip
    rec = await ingest(Inbound(
        channel=ChannelKind.VOICE, channel_id=NUMBER, external_id=f"{call_id}:recording",
        sender=sender, kind=InboundKind.EVENT, thread_refs=(call_id,),
        attachments=(Attachment(f"{call_id}.wav", "audio/wav", wav),),
        metadata={"event": "recording", "recording": call_id},
    ))  # fmt: skip
    assert rec.conversation_id == call.conversation_id
    assert rec.interaction_id is not None
    return call.conversation_id, rec.interaction_id


async def transcripts(db: Db, conv_id: str) -> list[Interaction]:
    async with db.sessions() as s:
        return list((await s.execute(
            select(Interaction).where(Interaction.conversation_id == conv_id,
                                      Interaction.kind == "transcript")
        )).scalars())  # fmt: skip


async def job(db: Db, interaction_id: str) -> TranscriptionJob:
    async with db.sessions() as s:
        row = await s.get(TranscriptionJob, interaction_id)
        assert row is not None, "the recording has no transcription job"
        return row


async def wait_transcript(db: Db, conv_id: str, timeout: float = 60) -> Interaction:
    async with asyncio.timeout(timeout):
        while not (found := await transcripts(db, conv_id)):
            await asyncio.sleep(0.1)
    return found[0]


async def search(hub: RunningHub, role: Role, **params: Any) -> dict[str, Any]:
    async with hub.client(role) as c:
        r = await c.get("/api/search", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def wait_hits(hub: RunningHub, word: str, timeout: float = 30) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        while not (body := await search(hub, Role.QA, text=word, kind="transcript"))["hits"]:
            await asyncio.sleep(0.1)
    return list(body["hits"])


async def test_recording_stored_while_transcription_was_down_gets_one_searchable_transcript(
    db: Db, call_wav: bytes
) -> None:
    """The hub stores a recording and stops before any transcript (HUB_TRANSCRIBE=off stands in
    for a crash): the job is already durable. The next hub transcribes it exactly once."""
    async with running_hub(db, transcribe="off") as hub:
        assert "transcription" not in hub.services.extras
        conv_id, rec_id = await record_call(hub.services.ingestor, "1700000001.7", call_wav)
    pending = await job(db, rec_id)
    assert (pending.status, pending.attempts) == ("pending", 0)
    assert await transcripts(db, conv_id) == []

    async with running_hub(db) as hub:  # transcribe=auto: pocketsphinx is installed
        service = hub.services.extras["transcription"]
        assert isinstance(service, TranscriptionService)
        row = await wait_transcript(db, conv_id)
        hits = await wait_hits(hub, "refund")
        assert await service.worker.drain() == 0  # nothing left: no second transcript
    assert [h["id"] for h in hits] == [row.id]
    assert hits[0]["conversation_id"] == conv_id and hits[0]["channel"] == "voice"
    assert "refund" in row.text.split() and "manager" in row.text.split(), row.text
    data = row.payload["transcript"]
    assert data["recording_id"] == rec_id and data["engine"] == "pocketsphinx"
    segs = data["segments"]
    assert len(segs) == 2 and segs[0]["end_s"] <= segs[1]["start_s"], segs
    assert "manager" in segs[1]["text"].split()
    done = await job(db, rec_id)
    assert (done.status, done.transcript_id, done.attempts) == ("done", row.id, 1)
    assert len(await transcripts(db, conv_id)) == 1
    assert await requeue_missing(db.sessions) == (0, 0)


class ScriptedEngine:
    """A test double for an engine failing on cue (the real one cannot be made to)."""

    def __init__(self, *outcomes: Transcript | TranscriptionError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[Path] = []

    async def transcribe(self, audio: Path, *, language: str | None = None) -> Transcript:
        self.calls.append(audio)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, TranscriptionError):
            raise outcome
        return outcome


async def _due_now(db: Db, interaction_id: str) -> None:
    async with db.sessions() as s, s.begin():
        row = await s.get(TranscriptionJob, interaction_id)
        assert row is not None
        row.next_attempt_at = utcnow()


@SQLITE_ONLY
async def test_transient_failure_backs_off_then_succeeds_permanent_failure_is_recorded(
    db: Db, call_wav: bytes
) -> None:
    media = MediaStore(db.settings.data_dir / "media")
    ingest = make_ingestor(db.sessions, media)
    conv_ok, rec_ok = await record_call(ingest, "1700000002.1", call_wav)
    engine = ScriptedEngine(
        TranscriptionError("worker died", transient=True),
        Transcript((Segment(0.5, 2.0, "hello world"),), language="en"),
    )
    worker = TranscriptionWorker(db.sessions, None, media, engine, retry_base_s=60)
    before = utcnow()
    assert await worker.run_once()
    failed_once = await job(db, rec_ok)
    assert (failed_once.status, failed_once.attempts) == ("pending", 1)
    assert failed_once.last_error == "worker died"
    assert failed_once.next_attempt_at >= before + timedelta(seconds=59)  # backed off
    assert not await worker.run_once()  # not due yet: nothing runs
    await _due_now(db, rec_ok)
    assert await worker.run_once()
    assert engine.calls[0] == engine.calls[1] == media.path(await _sha(db, rec_ok))
    (row,) = await transcripts(db, conv_ok)
    assert row.text == "hello world"
    assert (await job(db, rec_ok)).status == "done"
    assert backoff_s(1, 30) == 30 and backoff_s(3, 30) == 120 and backoff_s(40, 30) == 6 * 3600

    conv_quiet, rec_quiet = await record_call(ingest, "1700000002.3", call_wav,
                                              caller="+14155550177")  # fmt: skip
    quiet = TranscriptionWorker(db.sessions, None, media, ScriptedEngine(Transcript(())))
    assert await quiet.run_once()  # no speech: done, and nothing added to the timeline
    silent_job = await job(db, rec_quiet)
    assert (silent_job.status, silent_job.transcript_id) == ("done", None)
    assert silent_job.last_error == "no speech found"
    assert await transcripts(db, conv_quiet) == []

    conv_bad, rec_bad = await record_call(ingest, "1700000002.2", b"RIFF not really audio",
                                         caller="+14155550199")
    worker = TranscriptionWorker(db.sessions, None, media,
                                 ScriptedEngine(TranscriptionError("not a PCM WAV file",
                                                                   transient=False)))  # fmt: skip
    assert await worker.run_once()
    failed = await job(db, rec_bad)
    assert failed.status == "failed" and failed.last_error == "not a PCM WAV file"
    assert await transcripts(db, conv_bad) == []
    async with db.sessions() as s:
        events = [i.payload for i in (await s.execute(
            select(Interaction).where(Interaction.conversation_id == conv_bad,
                                      Interaction.kind == "event"))).scalars()
                  if "transcript" in i.payload]  # fmt: skip
    assert events == [{"transcript": {"status": "failed", "recording_id": rec_bad,
                                      "code": "transcription_failed",
                                      "error": "not a PCM WAV file", "attempts": 1}}]
    assert await requeue_missing(db.sessions) == (0, 1)  # the backfill CLI retries it
    assert (await job(db, rec_bad)).status == "pending"

    # a job whose every lease expired (the process died mid-decode each time) is given up
    async with db.sessions() as s, s.begin():
        stuck = await s.get(TranscriptionJob, rec_bad)
        assert stuck is not None
        stuck.attempts = 5
    assert not await worker.run_once()
    gave_up = await job(db, rec_bad)
    assert (gave_up.status, gave_up.last_error) == ("failed",
                                                    "gave up after 5 interrupted attempt(s)")


async def _sha(db: Db, interaction_id: str) -> str:
    async with db.sessions() as s:
        ix = await s.get(Interaction, interaction_id)
        assert ix is not None
        return ix.attachments[0].sha256


# --- end to end: a real call through Asterisk 22, sipp phones carrying speech ------------------


def speech_pcap(wav: Path, out: Path) -> Path:
    """A phone-quality WAV as RTP (PCMU) for sipp."""
    ulaw = out.with_suffix(".pcmu")
    subprocess.run(["sox", "-D", str(wav), "-t", "ul", str(ulaw)], check=True)
    return write_rtp_pcap(ulaw.read_bytes(), out)


asterisk = asterisk_fixture("contacthub-transcript")


@SQLITE_ONLY
async def test_answered_call_recording_is_transcribed_and_found_by_search(
    db: Db, asterisk: AsteriskTestbed, call_wav: bytes, tmp_path: Path
) -> None:
    """Caller presses 1, the agent's phone answers, the caller talks and hangs up:
    the bridge recording lands in the timeline and its transcript is searchable."""
    tb = asterisk
    await setup_center(db, tb)
    greeting = speech_pcap(phone_wav("Hello.", tmp_path / "hello.wav"), tmp_path / "agent.pcap")
    once = tmp_path / "once.wav"
    once.write_bytes(call_wav)  # the two sentences, 1.5 s apart (about 8 s)
    # said twice: audio through a real PBX varies from call to call (jitter, mixing), and
    # PocketSphinx at 8 kHz misses a word now and then; the test is about the pipeline
    said = concat([once, once], tmp_path / "said.wav")
    words = speech_pcap(said, tmp_path / "caller.pcap")
    phone = agent_phone(tb, tmp_path, greeting)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        async with ready_agent(hub, tok) as sock:
            caller = call_in(tb, tmp_path,
                             caller_values(words, talk_delay_ms="3000", talk_ms="17500"),
                             scenario="caller_talk", name="caller-talk")  # fmt: skip
            offer = await sock.next("offer", timeout=15)
            conv_id = offer["conversation_id"]
            await sock.next("conversation.assigned", timeout=15)
            await wait_status(hub, conv_id, "resolved", timeout=45)  # the caller hung up
            rec = await wait_recording(hub, conv_id, timeout=40)
            row = await wait_transcript(db, conv_id)
            heard = row.text.split()
            assert "refund" in heard and "manager" in heard, row.text
            hits = await wait_hits(hub, "manager")
            async with hub.client(token=tok) as c:  # the assigned agent sees it in the timeline
                items = (await c.get(f"/api/conversations/{conv_id}/interactions")).json()
    assert caller.wait(10) == 0, caller.errors()
    assert phone.wait(10) == 0, phone.errors()
    assert [h["id"] for h in hits] == [row.id] and hits[0]["conversation_id"] == conv_id
    assert row.payload["transcript"]["recording_id"] == rec["id"]
    segs = row.payload["transcript"]["segments"]
    assert segs and all(0 <= s["start_s"] <= s["end_s"] for s in segs)
    shown = [i for i in items["items"] if i["kind"] == "transcript"]
    assert [i["id"] for i in shown] == [row.id]


@SQLITE_ONLY
async def test_cli_backfills_a_recording_that_has_no_job(
    db: Db, call_wav: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recording stored before the trigger existed (its job row removed here) is found by
    ``contacthub transcribe --missing`` and transcribed, once."""
    media = MediaStore(db.settings.data_dir / "media")
    conv_id, rec_id = await record_call(make_ingestor(db.sessions, media), "1700000003.1", call_wav)
    async with db.sessions() as s, s.begin():
        await s.delete(await s.get(TranscriptionJob, rec_id))
    monkeypatch.setenv("HUB_DATA_DIR", str(db.settings.data_dir))
    monkeypatch.setenv("HUB_SECRET_KEY", "test-secret")
    assert await asyncio.to_thread(cli_main, ["transcribe", "--missing"]) == 0
    assert "queued 1, requeued 0, transcribed 1, failed 0" in capsys.readouterr().out
    (row,) = await transcripts(db, conv_id)
    assert "refund" in row.text.split()
    assert await asyncio.to_thread(cli_main, ["transcribe", "--missing"]) == 0  # nothing twice
    assert "queued 0, requeued 0, transcribed 0, failed 0" in capsys.readouterr().out
    assert len(await transcripts(db, conv_id)) == 1


def test_hub_transcribe_setting() -> None:
    assert Settings.from_env({}).transcribe == "auto"
    assert Settings.from_env({"HUB_TRANSCRIBE": " ON "}).transcribe == "on"
    with pytest.raises(SettingsError, match="HUB_TRANSCRIBE: expected on/off/auto"):
        Settings.from_env({"HUB_TRANSCRIBE": "maybe"})
    assert build_transcriber("off") is None
    assert isinstance(build_transcriber("auto"), SphinxTranscriber)  # the wheel is a dependency
