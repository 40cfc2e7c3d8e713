"""A call conversation opened in the inbox of a hub that runs no voice line (the ``make demo``
case), in headless Chromium: the Phone card says "Voice not connected", its Call button is
disabled, the Transfer card stays hidden, and the browser logs no error (no request answered 5xx).
"""

from __future__ import annotations

from playwright.async_api import Browser, Response, expect
from sqlalchemy import select

from hub.db.models import Agent, User
from tests.conftest import Db
from tests.hub.voice_helpers import add_contact, assigned_conversation
from tests.widget.inbox_helpers import (
    HubServer,
    browser_fixture,  # noqa: F401  (fixture "browser")
    chat_fixture,  # noqa: F401  (fixture "chat")
    hub_fixture,  # noqa: F401  (fixture "hub")
    open_inbox,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)


async def call_conversation(db: Db, agent_id: str) -> str:
    """A queued-then-assigned voice conversation with a caller who has a phone number."""
    contact_id = await add_contact(db)
    return await assigned_conversation(db, contact_id, agent_id, channel="voice",
                                       queue="support", subject="Call from +14155550199")


async def test_call_conversation_in_a_hub_without_voice_logs_no_console_error(
    sqlite_db: Db, hub: HubServer, browser: Browser
) -> None:
    async with sqlite_db.sessions() as s:
        agent_id = (await s.execute(select(Agent.id).join(User, User.id == Agent.user_id)
                                    .where(User.email == "agent@t.test"))).scalar_one()  # fmt: skip
    conv_id = await call_conversation(sqlite_db, agent_id)
    for email in ("agent@t.test", "sup@t.test"):  # the agent's and the supervisor's cards
        watched = await open_inbox(browser, hub, email)
        page = watched.page
        watched.console.clear()  # the login page's 401 for "who am I?" comes before: not ours
        failed: list[str] = []

        def on_response(r: Response, failed: list[str] = failed) -> None:
            if r.status >= 500:
                failed.append(f"{r.status} {r.url}")

        page.on("response", on_response)
        if email == "sup@t.test":  # not in the supervisor's own list
            await page.click("#tab-all")
        await page.click(f"#conv-list li[data-id='{conv_id}'] button")
        card = page.get_by_test_id("call-controls")
        await expect(card).to_be_visible()
        await expect(page.get_by_test_id("call-status")).to_have_text("Voice not connected")
        if email == "agent@t.test":
            await expect(page.get_by_test_id("click-to-call")).to_be_disabled()
        await expect(page.get_by_test_id("call-transfer")).to_be_hidden()
        await page.wait_for_timeout(500)  # let any late request land
        errors = [m for m in watched.console if m.startswith("error")]
        assert errors == [], errors
        assert watched.errors == [] and failed == [], (watched.errors, failed)
        await watched.context.close()
