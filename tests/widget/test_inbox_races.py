"""The inbox keeps live events that race its own API reads (headless Chromium, real hub).

The page reads state over REST and then follows pushed events. A read sent just before an event
can be answered just after it; drawing that older answer used to undo the event. Clean CI runs
caught it three ways: the offer card vanished right after it appeared (the reconnect's offer
list, read before the offer existed, came back after it), so Alt+A did nothing; a message
pushed during a timeline re-read was gone; a ready agent was drawn not ready. Here the page's
answers for one path are read from the hub at once but handed over only after the event has
been shown, which makes that order certain instead of rare.
"""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.widget.inbox_helpers import (
    HubServer,
    StandInChat,
    browser_fixture,  # noqa: F401  (fixture "browser")
    chat_fixture,  # noqa: F401  (fixture "chat")
    chat_in,
    hub_fixture,  # noqa: F401  (fixture "hub")
    open_inbox,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)

SETTLE_MS = 300  # the page has parsed and drawn a handed-over answer well within this


class HeldAnswers:
    """While ``holding``, each answer for the routed path is fetched from the hub at once (so it
    is the state before whatever happens next) and handed to the page on :meth:`release`."""

    def __init__(self) -> None:
        self.holding = False
        self.held = asyncio.Event()  # an answer is waiting
        self._go = asyncio.Event()

    async def route(self, route: Route) -> None:
        if not self.holding:
            await route.continue_()
            return
        response = await route.fetch()
        self.held.set()
        await self._go.wait()
        await route.fulfill(response=response)

    async def release(self, page: Page) -> None:
        """Hand every held answer over and wait until the page has drawn them."""
        self.holding = False
        self._go.set()
        await page.evaluate(f"() => new Promise((done) => setTimeout(done, {SETTLE_MS}))")


async def test_an_offer_shown_while_the_offer_list_is_read_stays(
    browser: Browser, hub: HubServer, chat: StandInChat
) -> None:
    offers = HeldAnswers()
    offers.holding = True  # from the first read on: the page's start-up reads wait for the offer

    async def prepare(context: BrowserContext) -> None:
        await context.route("**/api/offers", offers.route)

    agent = await open_inbox(browser, hub, "agent@t.test", prepare)
    page = agent.page
    await asyncio.wait_for(offers.held.wait(), 10)  # the page asked: the answer is "no offers"
    await page.select_option("#presence-select", "ready")
    await expect(page.locator("#presence-dot")).to_have_attribute("data-presence", "ready")
    await hub.ingest(chat_in("v-1", "m-1", "Hello?"))
    await expect(page.get_by_test_id("offer")).to_be_visible()

    await offers.release(page)  # the older "no offers" arrives after the offer
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await page.keyboard.press("Alt+a")
    await expect(page.get_by_test_id("conv-status")).to_have_text("Assigned")
    await expect(page.locator("#timeline .bubble.in .text")).to_have_text("Hello?")
    assert not agent.errors, agent.errors


async def test_a_message_pushed_while_the_timeline_is_read_stays(
    browser: Browser, hub: HubServer, chat: StandInChat
) -> None:
    contacts = HeldAnswers()  # the last read before the timeline is drawn

    async def prepare(context: BrowserContext) -> None:
        await context.route("**/api/contacts/*", contacts.route)

    agent = await open_inbox(browser, hub, "agent@t.test", prepare)
    page = agent.page
    await page.select_option("#presence-select", "ready")
    await expect(page.locator("#presence-dot")).to_have_attribute("data-presence", "ready")
    receipt = await hub.ingest(chat_in("v-2", "m-1", "First"))
    await page.get_by_test_id("offer-accept").click()
    await expect(page.locator("#timeline .bubble.in .text")).to_have_text("First")

    contacts.holding = True
    await page.locator(f"#conv-list li[data-id='{receipt.conversation_id}'] button").click()
    await asyncio.wait_for(contacts.held.wait(), 10)  # timeline read (without "Second")
    await hub.ingest(chat_in("v-2", "m-2", "Second"))
    await expect(page.locator("#timeline .bubble.in .text")).to_have_text(["First", "Second"])

    await contacts.release(page)  # the older timeline is drawn after the push
    await expect(page.locator("#timeline .bubble.in .text")).to_have_text(["First", "Second"])
    assert not agent.errors, agent.errors
