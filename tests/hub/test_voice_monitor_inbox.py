"""The inbox's Phone card in headless Chromium, with the real hub, Asterisk 22 and sipp phones.

An agent opens a conversation with Dana and clicks her number: their phone rings, then Dana's
(a sipp phone), and the card shows the call connected. A supervisor opens that call in their
inbox and clicks Listen (their phone rings and answers), then Whisper, then Stop.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import Browser, expect
from sqlalchemy import select

from hub.db.models import Conversation
from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_voice_click_to_call import asterisk, speech
from tests.hub.voice_helpers import (
    SQLITE_ONLY,
    agent_phone,
    assigned_conversation,
    call_events,
    customer_phone,
    set_voice_endpoint,
    setup_outbound,
    stored_timeline,
    voice_channel,
)
from tests.servers.asterisk import AsteriskTestbed
from tests.widget.inbox_helpers import browser_fixture, open_inbox

__all__ = ["asterisk", "browser_fixture", "speech"]  # fixtures


@SQLITE_ONLY
async def test_agent_clicks_to_call_supervisor_listens_whispers_stops_from_the_inbox(
    db: Db, asterisk: AsteriskTestbed, speech: dict[str, Path], browser: Browser,
    tmp_path: Path,
) -> None:
    tb = asterisk
    contact_id = await setup_outbound(db, tb)
    phone = agent_phone(tb, tmp_path, speech["agent"])
    customer = customer_phone(tb, tmp_path, "agent", name="customer", ring_ms="300",
                              speech_pcap=str(speech["customer"]))
    sup_phone = agent_phone(tb, tmp_path, speech["agent"], line="agent2", name="sup")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        agent_id, sup_agent = hub.agent_ids["agent@t.test"], hub.agent_ids["sup@t.test"]
        await set_voice_endpoint(db, sup_agent, "PJSIP/agent2")
        case = await assigned_conversation(db, contact_id, agent_id, channel="sms",
                                           queue="general", subject="Where is my order?")
        async with hub.client(Role.AGENT) as c:
            r = await c.put("/api/agents/me/presence", json={"presence": "ready"})
            assert r.status_code == 200, r.text

        agent = await open_inbox(browser, hub, "agent@t.test")  # type: ignore[arg-type]
        page = agent.page
        await page.click(f"#conv-list li[data-id='{case}'] button")
        call_button = page.get_by_test_id("click-to-call")
        await expect(call_button).to_be_visible()
        await call_button.click()
        await expect(page.get_by_test_id("call-state")).to_have_text(
            "Call: connected", timeout=20_000)  # fmt: skip
        conv_id = await _voice_conversation(db, contact_id)

        sup = await open_inbox(browser, hub, "sup@t.test")  # type: ignore[arg-type]
        spage = sup.page
        await spage.click("#tab-all")
        await spage.click(f"#conv-list li[data-id='{conv_id}'] button")
        listen = spage.get_by_test_id("monitor-listen")
        await expect(listen).to_be_visible()
        await listen.click()  # the supervisor's phone rings and answers
        await expect(spage.get_by_test_id("monitor-listen")).to_have_attribute(
            "aria-pressed", "true", timeout=15_000)  # fmt: skip
        await spage.get_by_test_id("monitor-whisper").click()
        await expect(spage.get_by_test_id("monitor-whisper")).to_have_attribute(
            "aria-pressed", "true")  # fmt: skip
        await spage.get_by_test_id("monitor-stop").click()
        await expect(spage.get_by_test_id("monitor-stop")).to_have_count(0)
        assert await asyncio.to_thread(sup_phone.wait, 10) == 0, sup_phone.errors()

        await page.get_by_test_id("call-hangup").click()  # the agent ends the call
        await expect(page.get_by_test_id("conv-status")).to_have_text(
            re.compile("Resolved"), timeout=15_000)  # fmt: skip
        for w in (agent, sup):
            assert not w.errors, w.errors
    for p in (phone, customer):
        assert await asyncio.to_thread(p.wait, 10) == 0, p.errors()
    events = [e["event"] for e in call_events(await stored_timeline(db, conv_id))]
    assert events[:3] == ["dialing", "agent_answered", "answered"], events
    monitoring = [e for e in events if e.startswith("monitor")]
    assert monitoring == ["monitor_started", "monitor_mode", "monitor_ended"], events


async def _voice_conversation(db: Db, contact_id: str) -> str:
    async with db.sessions() as s:
        return (
            await s.execute(
                select(Conversation.id).where(Conversation.contact_id == contact_id,
                                              Conversation.channel == "voice")
            )
        ).scalar_one()
