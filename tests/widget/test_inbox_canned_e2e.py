"""An agent's reply attachments reach the real visitor widget: both pages in headless Chromium,
the REAL hub and web-chat channel (the shop page on another origin, as in test_chat_e2e)."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.widget.inbox_helpers import (
    browser_fixture,  # noqa: F401  (fixture "browser")
    make_png,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)
from tests.widget.test_chat_e2e import (
    Stack,
    open_visitor,
    ready_agent,
    snap,
    stack_fixture,  # noqa: F401  (fixture "stack")
    visitor_says,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def test_agent_attachments_show_in_the_visitor_widget(browser: Browser, stack: Stack) -> None:
    agent = await ready_agent(browser, stack, "agent@t.test")
    visitor = await open_visitor(browser, stack)
    await visitor_says(visitor, "Can I have the label and a photo?")
    a = agent.page
    await a.get_by_test_id("offer-accept").click()
    await expect(a.locator("#timeline .bubble.in .text")).to_have_text(
        "Can I have the label and a photo?"
    )
    png = make_png(48, 32, (30, 90, 200))
    await a.set_input_files(
        "#composer-file",
        files=[
            {"name": "label.pdf", "mimeType": "application/pdf", "buffer": PDF},
            {"name": "parcel.png", "mimeType": "image/png", "buffer": png},
        ],
    )
    chips = a.locator("#composer-files .file-chip[data-status=ready]")
    await expect(chips).to_have_count(2)
    await a.fill("#composer-text", "Here you go")
    await a.click("#send-button")
    await expect(a.locator("#timeline .bubble.out .attachments li")).to_have_count(2)

    log = visitor.get_by_role("log")
    await expect(log.get_by_text("Here you go")).to_be_visible()
    picture = log.get_by_role("img", name="parcel.png")
    await expect(picture).to_be_visible()
    await expect(picture).to_have_js_property("complete", True)
    assert await picture.evaluate("img => img.naturalWidth") == 48
    link = log.get_by_role("link", name="label.pdf")
    await expect(link).to_be_visible()
    async with visitor.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    assert download.suggested_filename == "label.pdf"
    path = await download.path()
    assert path is not None and path.read_bytes() == PDF
    await snap(visitor, "08-visitor-sees-agent-attachments")
    assert agent.errors == []
