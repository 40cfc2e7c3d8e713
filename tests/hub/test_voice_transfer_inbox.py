"""The inbox's Transfer card in headless Chromium, with the real hub, Asterisk 22 and sipp phones:
Agent One answers a call, picks Agent Two, clicks "Consult first" (the caller is held, Agent
Two's phone answers), then "Complete transfer"; the conversation is Agent Two's."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.channels.voice.test_voice_transfer_e2e import ended
from tests.conftest import Db
from tests.hub.test_dispatch import ready
from tests.hub.test_voice_transfer_hub import (
    agent_one_on_a_call,
    agent_speech,
    asterisk,
    wait_assignee,
)
from tests.hub.voice_helpers import SQLITE_ONLY, agent_phone
from tests.servers.asterisk import AsteriskTestbed
from tests.widget.inbox_helpers import browser_fixture, open_inbox

__all__ = ["agent_speech", "asterisk", "browser_fixture"]  # fixtures


@SQLITE_ONLY
async def test_agent_consults_and_completes_a_transfer_from_the_inbox(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, browser: Browser, tmp_path: Path
) -> None:
    tb = asterisk
    async with agent_one_on_a_call(db, tb, tmp_path, agent_speech) as on:
        hub, conv_id = on.hub, on.conv_id
        a2 = hub.agent_ids["agent2@t.test"]
        ph2 = agent_phone(tb, tmp_path, agent_speech, line="agent2")
        await ready(hub, on.token2)
        agent = await open_inbox(browser, hub, "agent@t.test")  # type: ignore[arg-type]
        page = agent.page
        await page.click(f"#conv-list li[data-id='{conv_id}'] button")
        card = page.get_by_test_id("call-transfer")
        await expect(card).to_be_visible(timeout=15_000)
        await page.get_by_test_id("transfer-agent").select_option(a2)
        await page.get_by_test_id("transfer-consult").click()
        complete = page.get_by_test_id("transfer-complete")
        await expect(complete).to_be_enabled(timeout=15_000)
        await complete.click()
        await wait_assignee(hub, conv_id, a2)
        await ended(on.phone1)  # Agent One is off the call
        assert not agent.errors, agent.errors
        async with hub.client(token=on.token2) as c2:
            assert (await c2.post(f"/api/calls/{conv_id}/hangup")).status_code == 200
    await ended(ph2, on.caller)
