"""The QA page shows a call's transcript under its recording's player; a click seeks the audio.

Headless Chromium against the real hub (SQLite, search index, media store, the transcription
worker with PocketSphinx): a call and its recording are ingested as the voice channel hands
them over, the hub transcribes the speech, QA finds the call by a spoken word, opens it, and
clicks the second segment: the player jumps to where that sentence starts.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser, expect

from hub.db.models import TranscriptionJob
from tests.conftest import Db
from tests.hub.test_voice_transcript import record_call
from tests.recorder.test_transcribe_sphinx import PHRASE_1, PHRASE_2, concat, phone_wav
from tests.widget.inbox_helpers import (
    CHROMIUM,
    HubServer,
    browser_fixture,  # noqa: F401  (fixture "browser")
    chat_fixture,  # noqa: F401  (fixture "chat")
    hub_fixture,  # noqa: F401  (fixture "hub")
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)
from tests.widget.test_qa_page import sign_in


async def wait_transcribed(sqlite_db: Db, rec_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        async with sqlite_db.sessions() as s:
            job = await s.get(TranscriptionJob, rec_id)
        if job is not None and job.status == "done":
            return
        assert time.monotonic() < deadline, "the recording was never transcribed"
        await asyncio.sleep(0.2)


async def test_qa_clicks_a_transcript_segment_and_the_player_seeks_there(
    hub: HubServer, sqlite_db: Db, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert CHROMIUM
    d = tmp_path_factory.mktemp("qa-transcript")
    wav = concat([phone_wav(PHRASE_1, d / "one.wav", pad_before_s=0.5, pad_after_s=1.5),
                  phone_wav(PHRASE_2, d / "two.wav", pad_after_s=0.5)], d / "call.wav")  # fmt: skip
    assert hub.app is not None
    _, rec_id = await record_call(hub.app.services.ingestor, "1700000009.1", wav.read_bytes())
    await wait_transcribed(sqlite_db, rec_id)

    qa = await sign_in(browser, hub, "qa@t.test")
    page = qa.page
    await page.fill("#q", "manager")
    await page.keyboard.press("Enter")
    hits = page.get_by_test_id("hit")
    await expect(hits).to_have_count(1)
    await hits.first.click()
    recording = page.locator(f'#timeline [data-id="{rec_id}"]')
    segments = recording.get_by_test_id("transcript-segment")
    await expect(segments).to_have_count(2)
    await expect(segments.nth(1)).to_contain_text("manager")
    await expect(recording.get_by_test_id("play")).to_have_count(1)  # the QA player, added
    start = float(await segments.nth(1).get_attribute("data-start") or "nan")
    assert start > 3.0, start  # the second sentence starts after the first and the pause
    await segments.nth(1).click()
    deadline = time.monotonic() + 10
    while True:
        t = await recording.locator("audio").evaluate("a => a.currentTime")
        if t >= start - 0.05:
            break
        assert time.monotonic() < deadline, f"the player did not seek to {start}: {t}"
        await asyncio.sleep(0.05)
    await expect(segments.nth(1)).to_have_class("segment current")
    assert qa.errors == [] and qa.dialogs == []
