"""Visitor widget and agent inbox, both in headless Chromium, holding a chat through the REAL hub.

The hub (``create_app`` under uvicorn, SQLite, dispatcher, the webchat channel built from its
config row) runs on one 127.0.0.1 port; the customer's web page, which embeds
``/widget/loader.js``, is served from another port, so the widget is cross-origin exactly as on a
real shop and the site's ``allowed_origins`` is exercised. Screenshots of the key states go to
``var/test-artifacts/chat-e2e/``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from channels.webchat.devserver import serving
from hub.config import apply_config, parse_config
from hub.settings import Settings
from tests.conftest import Db
from tests.hub.server import seed_users
from tests.widget.inbox_helpers import (
    HubServer,
    Watched,
    browser_fixture,  # noqa: F401  (fixture "browser")
    free_port,
    make_png,
    open_inbox,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)

ARTIFACTS = Path(os.environ.get("CONTACTHUB_ARTIFACTS", "var/test-artifacts")) / "chat-e2e"
SITE_KEY = "shop-key-e2e"
HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
</head><body><h1>Our shop</h1>
<script src="{hub}/widget/loader.js" data-site-key="{key}" async></script></body></html>"""
CENTER = """
skills: [english]
queues:
  - name: support
    required_skills: [{{skill: english, min_level: 1}}]
    offer_ttl_s: {ttl}
channels:
  - kind: webchat
    name: website
    address: {key}
    queue: support
    config:
      title: Shop support
      agent_name: Shop
      allowed_origins: ["{origin}"]
agents:
  - email: agent@t.test
    name: Ava Agent
    skills: {{english: 3}}
    capacity: {{webchat: 3}}
  - email: agent2@t.test
    name: Ben Backup
    skills: {{english: 3}}
    capacity: {{webchat: 3}}
"""


class Stack:
    """The running hub plus the shop page that embeds the widget."""

    def __init__(self, hub: HubServer, shop_url: str, agents: dict[str, str]) -> None:
        self.hub, self.shop_url, self.agents = hub, shop_url, agents


async def start_stack(db: Db, ttl: int) -> AsyncIterator[Stack]:
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(HOST_PAGE.format(hub=hub_url, key=SITE_KEY))

    async with serving(Starlette(routes=[Route("/", page)])) as shop_url:
        cfg = CENTER.format(ttl=ttl, key=SITE_KEY, origin=shop_url)
        await apply_config(db.sessions, parse_config(cfg), env={})
        agents = await seed_users(db)
        settings = Settings(
            data_dir=db.settings.data_dir,
            secret_key="test-secret",
            host="127.0.0.1",
            port=port,
            public_url=hub_url,
        )
        hub = HubServer(settings, port, {})
        await hub.start()
        try:
            yield Stack(hub, shop_url, agents)
        finally:
            await hub.stop()


@pytest.fixture(name="stack")
async def stack_fixture(sqlite_db: Db) -> AsyncIterator[Stack]:
    async for s in start_stack(sqlite_db, ttl=30):
        yield s


@pytest.fixture(name="short_offer_stack")
async def short_offer_stack_fixture(sqlite_db: Db) -> AsyncIterator[Stack]:
    async for s in start_stack(sqlite_db, ttl=3):
        yield s


async def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png")


async def ready_agent(browser: Browser, stack: Stack, email: str) -> Watched:
    agent = await open_inbox(browser, stack.hub, email)
    await agent.page.select_option("#presence-select", "ready")
    await expect(agent.page.locator("#presence-dot")).to_have_attribute("data-presence", "ready")
    return agent


async def open_visitor(browser: Browser, stack: Stack) -> Page:
    context = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    page = await context.new_page()
    await page.goto(stack.shop_url + "/")
    await page.get_by_role("button", name="Open chat").click()
    await expect(page.get_by_role("dialog", name="Shop support")).to_be_visible()
    return page


async def visitor_says(page: Page, text: str) -> None:
    composer = page.get_by_label("Type your message")
    await composer.fill(text)
    await composer.press("Enter")
    await expect(page.get_by_role("log").get_by_text(text)).to_be_visible()


async def test_visitor_and_agent_chat_then_visitor_reloads_and_sees_history(
    browser: Browser, stack: Stack
) -> None:
    agent = await ready_agent(browser, stack, "agent@t.test")
    visitor = await open_visitor(browser, stack)
    await visitor_says(visitor, "Where is my order A-1009?")
    await snap(visitor, "01-visitor-sent")

    a = agent.page
    await expect(a.get_by_test_id("offer")).to_be_visible()
    await snap(a, "02-agent-offer")
    await a.get_by_test_id("offer-accept").click()
    await expect(a.locator("#timeline .bubble.in .text")).to_have_text("Where is my order A-1009?")
    await a.fill("#composer-text", "It ships today!")
    await a.click("#send-button")
    await expect(a.locator("#timeline .bubble.out .text")).to_have_text("It ships today!")
    await snap(a, "03-agent-replied")

    log = visitor.get_by_role("log")
    await expect(log.get_by_text("It ships today!")).to_be_visible()
    await snap(visitor, "04-visitor-sees-reply")

    await visitor.reload()
    log = visitor.get_by_role("log")
    await expect(log.get_by_text("Where is my order A-1009?")).to_be_visible()
    await expect(log.get_by_text("It ships today!")).to_be_visible()
    await snap(visitor, "05-visitor-history-after-reload")
    # the same visitor: a new message lands in the agent's open conversation, not a new offer
    await visitor_says(visitor, "Thanks!")
    await expect(a.locator("#timeline .bubble.in .text")).to_have_text(
        ["Where is my order A-1009?", "Thanks!"]
    )
    await expect(a.get_by_test_id("offer")).to_have_count(0)
    assert agent.errors == []


async def test_visitor_attachment_shows_in_the_agent_timeline(
    browser: Browser, stack: Stack, tmp_path: Path
) -> None:
    agent = await ready_agent(browser, stack, "agent@t.test")
    visitor = await open_visitor(browser, stack)
    await visitor_says(visitor, "Here is the receipt")
    a = agent.page
    await a.get_by_test_id("offer-accept").click()
    await expect(a.locator("#timeline .bubble.in .text")).to_have_text("Here is the receipt")

    picture = tmp_path / "receipt.png"
    picture.write_bytes(make_png(96, 64, (40, 160, 90)))
    async with visitor.expect_file_chooser() as chooser_info:
        await visitor.get_by_role("button", name="Attach a file").click()
    await (await chooser_info.value).set_files(str(picture))
    await visitor.get_by_role("button", name="Send", exact=True).click()
    await expect(visitor.get_by_role("log").get_by_role("img", name="receipt.png")).to_be_visible()
    await snap(visitor, "06-visitor-attachment")

    thumb = a.locator("#timeline .attachment img.thumb")
    try:
        await expect(thumb).to_have_count(1)
        await expect(thumb).to_have_js_property("complete", True)
        assert await thumb.evaluate("img => img.naturalWidth") == 96
        await expect(a.locator("#timeline .attachment a")).to_have_text("receipt.png")
        # the accepted chat stays in the agent's own list while the visitor keeps writing
        await expect(a.locator("#conv-list li[data-id]")).to_have_count(1)
        await expect(a.get_by_test_id("conv-status")).to_have_text("Assigned")
    finally:
        await snap(a, "07-agent-sees-attachment")


async def test_expired_offer_goes_to_the_other_agent_then_a_transfer_shows_live(
    browser: Browser, short_offer_stack: Stack
) -> None:
    stack = short_offer_stack
    first = await ready_agent(browser, stack, "agent@t.test")
    second = await ready_agent(browser, stack, "agent2@t.test")
    visitor = await open_visitor(browser, stack)
    await visitor_says(visitor, "Anyone there?")

    await expect(first.page.get_by_test_id("offer")).to_be_visible()  # longest idle first
    await expect(second.page.get_by_test_id("offer")).to_have_count(0)
    await expect(first.page.get_by_test_id("offer")).to_have_count(0, timeout=8000)
    await expect(second.page.get_by_test_id("offer")).to_be_visible()
    await snap(second.page, "08-offer-moved-to-second-agent")
    await second.page.get_by_test_id("offer-accept").click()
    b = second.page
    await expect(b.locator("#timeline .bubble.in .text")).to_have_text("Anyone there?")
    await expect(first.page.locator("#announcer")).to_contain_text("offer expired")

    # agent B hands the chat to agent A; A's page shows it without a reload
    await first.page.evaluate("window.__notReloaded = true")
    await b.click("#transfer-button")
    await expect(b.locator("#transfer-dialog")).to_be_visible()
    ava = await b.locator("#transfer-agent option", has_text="Ava Agent").get_attribute("value")
    assert ava == stack.agents["agent@t.test"]
    await b.select_option("#transfer-agent", ava)
    await b.fill("#transfer-note", "Knows the order system")
    await b.click("#transfer-submit")
    await expect(b.locator("#transfer-dialog")).to_be_hidden()

    a = first.page
    mine = a.locator("#conv-list li[data-id]")
    await expect(mine).to_have_count(1)
    assert await a.evaluate("window.__notReloaded === true")
    await mine.locator("button").click()
    await expect(a.get_by_test_id("transferred")).to_contain_text("Ava Agent")
    await expect(a.locator("#timeline .kind-transfer")).to_contain_text("Knows the order system")
    await snap(a, "09-transfer-arrived-live")
    # and the new owner's reply reaches the visitor
    await a.fill("#composer-text", "Ava here, I have your chat now.")
    await a.click("#send-button")
    await expect(
        visitor.get_by_role("log").get_by_text("Ava here, I have your chat now.")
    ).to_be_visible()
    await snap(visitor, "10-visitor-sees-new-agent")
