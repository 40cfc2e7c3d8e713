"""The inbox's Phone card in headless Chromium, with the real hub, Asterisk 22 and sipp phones.

An agent opens a conversation with Dana and clicks her number: their phone rings, then Dana's
(a sipp phone), and the card shows the call connected. A supervisor opens that call in their
inbox and clicks Listen (their phone rings and answers), then Whisper, then Stop.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select, update

from hub.db.models import Agent, Assignment, Conversation, Queue
from hub.domain import Role
from hub.ids import new_id
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_voice_click_to_call import asterisk, setup, speech
from tests.hub.test_voice_hub import _timeline_after, call_events, voice_channel
from tests.servers.asterisk import AsteriskTestbed, start_sipp
from tests.widget.inbox_helpers import browser_fixture, open_inbox

__all__ = ["asterisk", "browser_fixture", "speech"]  # fixtures

SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


async def open_case(db: Db, contact_id: str, agent_id: str) -> str:
    """An SMS conversation with Dana already assigned to the agent (what they work on)."""
    async with db.sessions() as s, s.begin():
        queue = (await s.execute(select(Queue.id).where(Queue.name == "general"))).scalar_one()
        conv = Conversation(id=new_id("conversation"), contact_id=contact_id, channel="sms",
                            queue_id=queue, status="assigned", assignee_id=agent_id,
                            subject="Where is my order?")  # fmt: skip
        s.add(conv)
        await s.flush()
        s.add(Assignment(id=new_id("assignment"), conversation_id=conv.id, agent_id=agent_id))
    return conv.id


@SQLITE_ONLY
async def test_agent_clicks_to_call_supervisor_listens_whispers_stops_from_the_inbox(
    db: Db, asterisk: AsteriskTestbed, speech: dict[str, Path], browser: Browser,
    tmp_path: Path,
) -> None:
    tb = asterisk
    contact_id = await setup(db, tb)
    agent_phone = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent1"],
                             values={"ring_ms": "200", "speech_pcap": str(speech["agent"])})
    customer = start_sipp(tb, "agent", tmp_path, port=tb.caller_port, name="customer",
                          values={"ring_ms": "300", "speech_pcap": str(speech["customer"])})
    sup_phone = start_sipp(tb, "agent", tmp_path, port=tb.agent_ports["agent2"], name="sup",
                           values={"ring_ms": "200", "speech_pcap": str(speech["agent"])})
    async with running_hub(db) as hub:
        await voice_channel(hub)
        agent_id, sup_agent = hub.agent_ids["agent@t.test"], hub.agent_ids["sup@t.test"]
        async with db.sessions() as s, s.begin():
            await s.execute(update(Agent).where(Agent.id == sup_agent)
                            .values(voice_endpoint="PJSIP/agent2"))  # fmt: skip
        case = await open_case(db, contact_id, agent_id)
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
    for phone in (agent_phone, customer):
        assert await asyncio.to_thread(phone.wait, 10) == 0, phone.errors()
    events = [e["event"] for e in call_events(await _timeline_after(db, conv_id))]
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
