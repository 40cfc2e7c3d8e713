"""The agent inbox in headless Chromium against the real hub (SQLite, dispatcher, /agent).

Every test drives the page the way an agent does (login form, presence switch, offer card,
composer, transfer dialog) and checks both what the page shows and what the hub stored.
A screenshot of a working inbox is written to /tmp/inbox.png.
"""

from __future__ import annotations

import asyncio
import re

import httpx
from playwright.async_api import Browser, expect
from sqlalchemy import select

from channels.base import Attachment
from hub.db.models import Conversation
from tests.conftest import Db
from tests.hub.server import PASSWORD
from tests.widget.inbox_helpers import (
    HubServer,
    StandInChat,
    browser_fixture,  # noqa: F401  (fixture "browser")
    call_in,
    chat_fixture,  # noqa: F401  (fixture "chat")
    chat_in,
    email_in,
    fax_in,
    free_port,
    hub_fixture,  # noqa: F401  (fixture "hub")
    make_png,
    make_wav,
    open_inbox,
    setup_center,
    sms_in,
    snap,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)

SCREENSHOT = "/tmp/inbox.png"


async def token(hub: HubServer, email: str) -> str:
    async with httpx.AsyncClient(base_url=hub.url) as c:
        r = await c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


async def status_of(db: Db, conversation_id: str) -> Conversation:
    async with db.sessions() as s:
        return (
            await s.execute(select(Conversation).where(Conversation.id == conversation_id))
        ).scalar_one()


async def test_agent_takes_an_offer_replies_notes_and_resolves(
    browser: Browser, hub: HubServer, chat: StandInChat, sqlite_db: Db
) -> None:
    agent = await open_inbox(browser, hub, "agent@t.test")
    page = agent.page
    response = await page.request.get(f"{hub.url}/inbox/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["x-content-type-options"] == "nosniff"

    await page.select_option("#presence-select", "ready")
    await expect(page.locator("#presence-dot")).to_have_attribute("data-presence", "ready")

    receipt = await hub.ingest(
        chat_in(
            "v-123",
            "m-1",
            "Hi, my <b>order</b> A-1009 is late",
            sender_name="Dana Customer",
            metadata={"prechat": {"topic": "delivery", "order": "A-1009"}},
        )
    )
    offer = page.get_by_test_id("offer")
    await expect(offer).to_be_visible()
    await expect(offer).to_contain_text("Incoming chat")
    await page.wait_for_timeout(300)  # let the card's entrance animation finish
    await snap(page, "offer")
    first = int(await page.get_by_test_id("offer-countdown").inner_text())
    assert 20 < first <= 30
    await page.wait_for_timeout(1300)
    assert int(await page.get_by_test_id("offer-countdown").inner_text()) < first  # it counts

    await page.keyboard.press("Alt+a")  # the documented shortcut accepts
    await expect(offer).to_have_count(0)
    inbound = page.locator("#timeline .bubble.in .text")
    await expect(inbound).to_have_text("Hi, my <b>order</b> A-1009 is late")  # text, not markup
    assert await page.locator("#timeline .bubble b").count() == 0
    await expect(page.get_by_test_id("conv-status")).to_have_text("Assigned")
    await expect(page.get_by_test_id("contact-name")).to_have_text("Dana Customer")
    await expect(page.get_by_test_id("address")).to_contain_text("v-123")
    await expect(page.get_by_test_id("metadata")).to_contain_text("prechat · topic")
    await expect(page.get_by_test_id("metadata")).to_contain_text("delivery")
    await expect(page.get_by_test_id("wait-time")).to_have_text(re.compile(r"\d+ s"))
    await expect(page.locator("#conv-list li[data-id]")).to_have_count(1)

    # the customer writes again: pushed into the open timeline
    await hub.ingest(chat_in("v-123", "m-2", "Are you there?"))
    await expect(inbound).to_have_count(2)

    await page.fill("#composer-text", "Sorry about that, Dana. Checking now.")
    await page.keyboard.press("Control+Enter")
    reply = page.locator("#timeline .bubble.out")
    await expect(reply.locator(".text")).to_have_text("Sorry about that, Dana. Checking now.")
    await expect(reply.get_by_test_id("delivery")).to_have_attribute("data-status", "sent")
    assert [o.text for o in chat.sent] == ["Sorry about that, Dana. Checking now."]
    assert str(chat.sent[0].to) == "visitor:v-123"

    await page.click("#mode-note")
    await page.fill("#composer-text", "Customer is a repeat buyer; offer free shipping.")
    await page.click("#send-button")
    await expect(page.locator("#timeline .note .text")).to_have_text(
        "Customer is a repeat buyer; offer free shipping."
    )
    assert len(chat.sent) == 1  # a note never reaches the customer
    await page.screenshot(path=SCREENSHOT)
    await snap(page, "conversation")

    await page.keyboard.press("Escape")  # leave the composer, then "?" opens the help overlay
    await page.locator("#timeline").focus()
    await page.keyboard.press("?")
    await expect(page.locator("#help-dialog")).to_be_visible()
    await expect(page.locator("#help-dialog")).to_contain_text("Accept the incoming offer")
    await page.keyboard.press("Escape")
    await expect(page.locator("#help-dialog")).to_be_hidden()

    await page.click("#resolve-button")
    await expect(page.get_by_test_id("conv-status")).to_have_text("Resolved")
    await expect(page.locator("#reopen-button")).to_be_visible()
    assert (await status_of(sqlite_db, receipt.conversation_id)).status == "resolved"
    await expect(page.locator("#conv-list li[data-id]")).to_have_count(0)  # left "Mine (open)"
    await page.click("#reopen-button")  # back in the queue, and the ready agent is offered it
    await expect(page.get_by_test_id("conv-status")).to_have_text(re.compile("Queued|Offered"))
    await expect(page.get_by_test_id("offer")).to_be_visible()
    assert agent.errors == []
    assert not [m for m in agent.console if "Content Security Policy" in m]


async def test_supervisor_transfers_queued_work_to_an_agent_who_sees_it_live(
    browser: Browser, hub: HubServer, sqlite_db: Db
) -> None:
    agent = await open_inbox(browser, hub, "agent@t.test")
    await agent.page.select_option("#presence-select", "not_ready")  # so no offer comes
    await agent.page.select_option("#presence-reason", "lunch")
    await expect(agent.page.locator("#presence-dot")).to_have_attribute(
        "data-presence", "not_ready"
    )
    tok = await token(hub, "agent@t.test")
    async with httpx.AsyncClient(base_url=hub.url) as c:
        for _ in range(50):  # the page sends both changes in order; wait for the second
            me = await c.get("/api/agents", headers={"Authorization": f"Bearer {tok}"})
            ava = next(a for a in me.json()["items"] if a["name"] == "Ava Agent")
            if ava["presence_reason"] == "lunch":
                break
            await asyncio.sleep(0.1)
        assert (ava["presence"], ava["presence_reason"]) == ("not_ready", "lunch")
    await agent.page.evaluate("window.__notReloaded = true")
    await expect(agent.page.locator("#conv-list")).to_contain_text("Nothing assigned to you")

    receipt = await hub.ingest(sms_in("+14155550199", "s-1", "Need help with my bill"))
    sup = await open_inbox(browser, hub, "sup@t.test")
    page = sup.page
    await page.click("#tab-queue")
    item = page.locator(f"#conv-list li[data-id='{receipt.conversation_id}']")
    await expect(item).to_contain_text("SMS")
    await page.select_option("#filter-channel", "email")  # filters really filter
    await expect(item).to_have_count(0)
    await page.select_option("#filter-channel", "sms")
    await item.locator("button").click()
    await expect(page.locator("#timeline .bubble.in .text")).to_have_text("Need help with my bill")

    await page.click("#transfer-button")
    await expect(page.locator("#transfer-dialog")).to_be_visible()
    await snap(page, "transfer")
    ava = await page.locator("#transfer-agent option", has_text="Ava Agent").get_attribute("value")
    assert ava
    await page.select_option("#transfer-agent", ava)
    await page.fill("#transfer-note", "Billing dispute, be gentle")
    await page.click("#transfer-submit")
    await expect(page.locator("#transfer-dialog")).to_be_hidden()
    await expect(page.get_by_test_id("conv-status")).to_have_text("Assigned")

    # the agent's page shows it without a reload, with who transferred it
    a = agent.page
    mine = a.locator(f"#conv-list li[data-id='{receipt.conversation_id}']")
    await expect(mine).to_be_visible()
    assert await a.evaluate("window.__notReloaded === true")
    await mine.locator("button").click()
    await expect(a.get_by_test_id("transferred")).to_contain_text(
        "Transferred by Sue Supervisor from queue support to Ava Agent"
    )
    await expect(a.locator("#timeline .kind-transfer")).to_contain_text("Billing dispute")
    await a.fill("#composer-text", "Hello! €")
    await expect(a.locator("#segments")).to_contain_text("1 segment")
    conv = await status_of(sqlite_db, receipt.conversation_id)
    assert conv.assignee_id is not None and conv.status == "assigned"

    await a.click("#logout-button")  # the session is revoked on the hub, not just hidden
    await expect(a.locator("#login-form")).to_be_visible()
    assert (await a.request.get(f"{hub.url}/api/auth/me")).status == 401


async def test_an_offer_missed_in_one_browser_goes_to_the_next_agent(
    browser: Browser, sqlite_db: Db, chat: StandInChat
) -> None:
    agents = await setup_center(sqlite_db, ttl=3)
    server = HubServer(sqlite_db.settings, free_port(), {"webchat": chat})
    await server.start()
    try:
        first = await open_inbox(browser, server, "agent@t.test")
        await first.page.select_option("#presence-select", "ready")
        await expect(first.page.locator("#presence-dot")).to_have_attribute(
            "data-presence", "ready"
        )
        second = await open_inbox(browser, server, "agent2@t.test")
        await second.page.select_option("#presence-select", "ready")
        await expect(second.page.locator("#presence-dot")).to_have_attribute(
            "data-presence", "ready"
        )

        receipt = await server.ingest(chat_in("v-9", "x-1", "Anyone?"))
        await expect(first.page.get_by_test_id("offer")).to_be_visible()  # longest idle first
        await expect(second.page.get_by_test_id("offer")).to_have_count(0)
        # nobody touches it: the router expires it and the card goes away by itself
        await expect(first.page.get_by_test_id("offer")).to_have_count(0, timeout=8000)
        await expect(second.page.get_by_test_id("offer")).to_be_visible()
        await second.page.get_by_test_id("offer-accept").click()
        await expect(second.page.locator("#timeline .bubble.in .text")).to_have_text("Anyone?")
        conv = await status_of(sqlite_db, receipt.conversation_id)
        assert conv.assignee_id == agents["agent2@t.test"]
        # the agent who missed it was told, through the page's live region
        await expect(first.page.locator("#announcer")).to_contain_text("offer expired")
    finally:
        await server.stop()


async def test_email_fax_and_call_render_and_customer_html_cannot_run_script(
    browser: Browser, hub: HubServer
) -> None:
    hostile = (
        "<p>Hello <b>there</b>, invoice attached.</p>"
        "<script>alert('xss-script');console.log('xss-ran')</script>"
        "<img src=x onerror=\"alert('xss-img');console.log('xss-ran')\">"
        "<a href=\"javascript:alert('xss-link')\">click</a>"
    )
    email = await hub.ingest(
        email_in(
            "maria@example.org",
            "<e-1@example.org>",
            "Invoice question",
            hostile,
            sender_name="Maria Lopez",
            attachments=(Attachment("invoice.png", "image/png", make_png(64, 48, (200, 40, 40))),),
        )
    )
    fax = await hub.ingest(
        fax_in(
            "+14155550123",
            "fax-1",
            [make_png(120, 160, (250, 250, 250)), make_png(120, 160, (230, 230, 230))],
            "PURCHASE ORDER 77",
        )
    )
    call = await hub.ingest(call_in("+14155550124", "call-1", make_wav(), {"choice": "2-billing"}))
    sup = await open_inbox(browser, hub, "sup@t.test")
    page = sup.page
    await page.click("#tab-all")

    await page.locator(f"#conv-list li[data-id='{email.conversation_id}'] button").click()
    frame_el = page.locator("#timeline iframe.email-html")
    await expect(frame_el).to_have_count(1)
    assert await frame_el.get_attribute("sandbox") == ""  # no allow-scripts, no same-origin
    await expect(page.locator("#timeline .email .subject")).to_have_text("Invoice question")
    frame = page.frame_locator("#timeline iframe.email-html")
    await expect(frame.locator("p")).to_contain_text("Hello there, invoice attached.")
    await page.wait_for_timeout(800)
    thumb = page.locator("#timeline .email img.thumb")
    await expect(thumb).to_have_js_property("complete", True)
    assert await thumb.evaluate("img => img.naturalWidth") == 64
    await expect(page.locator("#timeline .email .attachment a")).to_have_text("invoice.png")
    assert sup.dialogs == []
    await snap(page, "email")
    assert not [m for m in sup.console if "xss" in m]
    assert await page.locator("body [onerror]").count() == 0  # nothing leaked into the page

    await page.locator("#timeline").focus()
    await page.keyboard.press("k")  # the previous conversation in the list: the fax
    await expect(
        page.locator(f"#conv-list li[data-id='{fax.conversation_id}'] button")
    ).to_have_attribute("aria-current", "true")
    pages = page.locator("#timeline img.fax-page")
    await expect(pages).to_have_count(2)
    for i in range(2):
        await expect(pages.nth(i)).to_have_js_property("complete", True)
        assert await pages.nth(i).evaluate("img => img.naturalWidth") == 120
    await expect(page.locator("#timeline .fax")).to_contain_text("2 pages")
    await snap(page, "fax")

    await page.locator(f"#conv-list li[data-id='{call.conversation_id}'] button").click()
    audio = page.locator("#timeline .call audio")
    await expect(audio).to_have_count(1)
    duration = await audio.evaluate(
        """a => new Promise((ok, bad) => {
            if (a.readyState >= 1) return ok(a.duration);
            a.addEventListener('loadedmetadata', () => ok(a.duration));
            a.addEventListener('error', () => bad(new Error('audio error ' + a.error?.code)));
        })"""
    )
    assert 0.9 < duration < 1.1
    await expect(page.get_by_test_id("metadata")).to_contain_text("2-billing")
    await snap(page, "call")
    assert sup.errors == []


async def test_the_recording_the_page_plays_is_the_stored_one_and_needs_a_session(
    browser: Browser, hub: HubServer
) -> None:
    wav = make_wav(0.5)
    call = await hub.ingest(call_in("+14155550125", "call-2", wav, {"choice": "1"}))
    sup = await open_inbox(browser, hub, "sup@t.test")
    await sup.page.click("#tab-all")
    await sup.page.locator(f"#conv-list li[data-id='{call.conversation_id}'] button").click()
    src = await sup.page.locator("#timeline .call audio").get_attribute("src")
    assert src
    fetched = await sup.page.request.get(f"{hub.url}{src}")  # with the page's session cookie
    assert fetched.status == 200 and await fetched.body() == wav
    assert fetched.headers["x-content-type-options"] == "nosniff"
    part = await sup.page.request.get(f"{hub.url}{src}", headers={"Range": "bytes=4-11"})
    assert part.status == 206 and await part.body() == wav[4:12]  # the player can seek
    async with httpx.AsyncClient(base_url=hub.url) as c:
        assert (await c.get(src)).status_code == 401  # no session, no recording


async def test_hub_serves_the_pages_with_security_headers(hub: HubServer) -> None:
    async with httpx.AsyncClient(base_url=hub.url) as c:
        root = await c.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/inbox/"
        page = await c.get("/inbox/")
        assert page.status_code == 200 and '<meta charset="utf-8">' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "<script>" not in page.text  # modules only: the CSP forbids inline script
        module = await c.get("/inbox/js/app.js")
        assert module.headers["content-type"].startswith("text/javascript")
        assert module.headers["content-security-policy"] == page.headers["content-security-policy"]
        vendor = await c.get("/inbox/vendor/socket.io.esm.min.js")
        assert vendor.status_code == 200 and "Released under the MIT License" in vendor.text
        widget = await c.get("/widget/loader.js")  # the visitor widget's committed build
        assert widget.status_code == 200
        assert widget.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors" not in widget.headers.get("content-security-policy", "")
        assert (await c.get("/inbox/nope.js")).status_code == 404


async def test_page_recovers_after_the_hub_restarts(
    browser: Browser, sqlite_db: Db, chat: StandInChat
) -> None:
    agent_id = (await setup_center(sqlite_db))["agent@t.test"]
    server = HubServer(sqlite_db.settings, free_port(), {"webchat": chat})
    await server.start()
    try:
        receipt = await server.ingest(chat_in("v-77", "r-1", "Before the restart"))
        sup = await token(server, "sup@t.test")
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.post(
                f"/api/conversations/{receipt.conversation_id}/transfer",
                json={"agent_id": agent_id},
                headers={"Authorization": f"Bearer {sup}"},
            )
            assert r.status_code == 200, r.text
        agent = await open_inbox(browser, server, "agent@t.test")
        page = agent.page
        await page.locator(f"#conv-list li[data-id='{receipt.conversation_id}'] button").click()
        await expect(page.locator("#timeline .bubble.in .text")).to_have_text("Before the restart")

        await server.stop()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "down")
        await asyncio.sleep(0.5)
        await server.start()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "up", timeout=15_000)

        # the socket is back and has re-joined the open conversation: a new message arrives live
        await server.ingest(chat_in("v-77", "r-2", "After the restart"))
        await expect(page.locator("#timeline .bubble.in .text")).to_have_text(
            ["Before the restart", "After the restart"]
        )
        await expect(
            page.locator(f"#conv-list li[data-id='{receipt.conversation_id}']")
        ).to_be_visible()
        assert page.url.endswith("/inbox/")
    finally:
        await server.stop()
