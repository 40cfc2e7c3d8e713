"""Canned responses and reply attachments in the agent inbox, in headless Chromium against the
real hub (SQLite, dispatcher, /agent, media store). The web-chat send side is the recording
stand-in of ``inbox_helpers`` (the real widget delivery is tested in tests/hub and test_chat_e2e).
"""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from channels.base import Address, AddressKind, ChannelKind, Inbound, InboundKind
from tests.hub.server import PASSWORD
from tests.widget.inbox_helpers import (
    HubServer,
    StandInChat,
    browser_fixture,  # noqa: F401  (fixture "browser")
    chat_fixture,  # noqa: F401  (fixture "chat")
    chat_in,
    hub_fixture,  # noqa: F401  (fixture "hub")
    make_png,
    open_inbox,
    snap,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)


async def login(hub: HubServer, email: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=hub.url)
    r = await c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return c


async def test_canned_responses_and_attachments_in_the_composer(
    browser: Browser, hub: HubServer, chat: StandInChat
) -> None:
    sup, ava = await login(hub, "sup@t.test"), await login(hub, "agent@t.test")
    try:
        for who, body in [
            (sup, {"scope": "team", "shortcut": "hello", "title": "Greeting",
                   "body": "Hi {{contact.first_name}}, {{agent.name}} here."}),
            (sup, {"scope": "team", "shortcut": "help", "title": "More help",
                   "body": "Anything else?", "channels": ["email"]}),  # not for chats
            (ava, {"shortcut": "thanks", "title": "Thank you", "body": "Thanks for waiting!"}),
        ]:  # fmt: skip
            r = await who.post("/api/canned-responses", json=body)
            assert r.status_code == 201, r.text
    finally:
        await sup.aclose()
        await ava.aclose()

    agent = await open_inbox(browser, hub, "agent@t.test")
    page = agent.page
    await page.select_option("#presence-select", "ready")
    await expect(page.locator("#presence-dot")).to_have_attribute("data-presence", "ready")
    await hub.ingest(chat_in("v-9", "m-1", "Hello?", sender_name="Dana Customer"))
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await page.keyboard.press("Alt+a")
    await expect(page.get_by_test_id("conv-status")).to_have_text("Assigned")

    # "/" + the start of a shortcut suggests; arrows move; Enter inserts the rendered text
    text = page.locator("#composer-text")
    await text.focus()
    await page.keyboard.type("/h")
    options = page.locator("#canned-list [role=option]")
    await expect(options).to_have_count(1)  # /help is email-only
    await expect(options.first).to_contain_text("/hello")
    await expect(text).to_have_attribute("aria-expanded", "true")
    await expect(text).to_have_attribute("aria-activedescendant", "canned-opt-0")
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await snap(page, "canned-suggestions")
    await page.keyboard.press("Enter")
    await expect(text).to_have_value("Hi Dana, Ava Agent here.")
    await expect(page.locator("#canned-popup")).to_be_hidden()
    await expect(text).to_be_focused()

    # the button opens a searchable list; keyboard only
    await page.keyboard.type(" ")
    await page.click("#canned-button")
    search = page.locator("#canned-search")
    await expect(search).to_be_focused()
    await expect(options).to_have_count(2)  # personal first, then the team's
    await expect(options.nth(0)).to_contain_text("/thanks")
    await page.keyboard.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("ArrowDown")  # wraps around
    await expect(search).to_have_attribute("aria-activedescendant", "canned-opt-0")
    await page.keyboard.type("thank")
    await expect(options).to_have_count(1)
    await page.keyboard.press("Enter")
    await expect(text).to_have_value("Hi Dana, Ava Agent here. Thanks for waiting!")
    await page.click("#canned-button")
    await page.keyboard.press("Escape")
    await expect(page.locator("#canned-popup")).to_be_hidden()
    await expect(page.locator("#canned-button")).to_be_focused()

    # attachments: a refused type shows the hub's reason; an image uploads and is sent
    png = make_png(24, 16, (200, 30, 30))
    await page.set_input_files(
        "#composer-file", files=[{"name": "page.html", "mimeType": "text/html", "buffer": b"<b>"}]
    )
    await expect(page.locator("#composer-error")).to_contain_text("cannot be attached")
    await page.set_input_files(
        "#composer-file", files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": png}]
    )
    chip = page.locator("#composer-files .file-chip")
    await expect(chip).to_have_count(1)
    await expect(chip).to_have_attribute("data-status", "ready")
    await expect(chip.get_by_role("button", name="Remove receipt.png")).to_be_visible()
    await snap(page, "composer-attachment")
    await text.focus()
    await page.keyboard.press("Control+Enter")
    reply = page.locator("#timeline .bubble.out")
    await expect(reply.locator(".text")).to_have_text(
        "Hi Dana, Ava Agent here. Thanks for waiting!"
    )
    await expect(reply.locator(".attachments a", has_text="receipt.png")).to_be_visible()
    thumb = reply.locator("img.thumb")
    await expect(thumb).to_be_visible()
    width = await thumb.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width == 24  # the bytes the page shows are the ones uploaded
    await expect(chip).to_have_count(0)
    await expect(reply.get_by_test_id("delivery")).to_have_attribute("data-status", "sent")
    [sent] = chat.sent
    assert [(a.filename, a.content_type, a.data) for a in sent.attachments] == [
        ("receipt.png", "image/png", png)
    ]
    await snap(page, "reply-with-attachment")
    assert agent.errors == []
    assert not [m for m in agent.console if "Content Security Policy" in m]


async def test_contact_panel_labels_ivr_and_prechat_answers(
    browser: Browser, hub: HubServer
) -> None:
    """The screen pop shows what the customer chose, labelled, without transport details."""
    call = await hub.ingest(
        Inbound(
            channel=ChannelKind.VOICE,
            channel_id="+14155550100",
            external_id="call-9",
            sender=Address(AddressKind.PHONE, "+14155550199"),
            kind=InboundKind.CALL,
            metadata={  # the shape channels/voice/inbound.py records for a queued call
                "ivr_path": ["main", "billing"],
                "digits": "2",
                "queue": "billing",
                "dialed": "100",
                "asterisk_channel": "PJSIP/trunk-00000001",
            },
        )
    )
    chat = await hub.ingest(
        chat_in("v-77", "m-77", "Hi", metadata={"prechat": {"topic": "returns"}, "client_id": "c"})
    )
    sup = await open_inbox(browser, hub, "sup@t.test")
    page = sup.page
    await page.click("#tab-all")
    await page.locator(f"#conv-list li[data-id='{call.conversation_id}'] button").click()
    answers = page.get_by_test_id("metadata")
    await expect(answers).to_contain_text("IVR path")
    await expect(answers).to_contain_text("main \u203a billing")  # "main > billing"
    await expect(answers).to_contain_text("Keys pressed")
    await expect(answers).not_to_contain_text("PJSIP")  # a transport detail, not an answer
    await snap(page, "contact-panel-ivr")
    await page.locator(f"#conv-list li[data-id='{chat.conversation_id}'] button").click()
    await expect(answers).to_contain_text("prechat · topic")
    await expect(answers).to_contain_text("returns")
    await expect(answers).not_to_contain_text("client_id")
    assert sup.errors == []


async def test_agent_manages_personal_canned_responses_in_the_inbox(
    browser: Browser, hub: HubServer
) -> None:
    agent = await open_inbox(browser, hub, "agent@t.test")
    page = agent.page
    await page.select_option("#presence-select", "ready")
    await expect(page.locator("#presence-dot")).to_have_attribute("data-presence", "ready")
    await hub.ingest(chat_in("v-5", "m-5", "Where is it?", sender_name="Eve Example"))
    await expect(page.get_by_test_id("offer")).to_be_visible()
    await page.get_by_test_id("offer-accept").click()  # Alt+A is covered in test_inbox.py
    await expect(page.get_by_test_id("conv-status")).to_have_text("Assigned")
    await expect(page.locator("#canned-button")).to_be_disabled()  # none exist yet

    await page.click("#canned-manage")
    dialog = page.locator("#canned-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#canned-scope-set")).to_be_hidden()  # agents: personal only
    await expect(page.locator("#canned-title")).to_be_focused()
    await page.fill("#canned-title", "Delivery estimate")
    await page.fill("#canned-shortcut", "/eta")
    await page.fill("#canned-body", "Hi {{contact.nmae}}, it arrives tomorrow.")
    await page.click("#canned-save")
    await expect(page.locator("#canned-form-error")).to_contain_text(
        "unknown placeholder {{contact.nmae}}"
    )
    await page.fill("#canned-body", "Hi {{contact.first_name}}, it arrives tomorrow.")
    await page.click("#canned-save")
    await expect(page.locator("#canned-manage-list li[data-id]")).to_have_count(1)
    await expect(page.locator("#canned-manage-list")).to_contain_text("/eta")
    await snap(page, "canned-manage")
    await page.click("#canned-close")
    await expect(dialog).to_be_hidden()
    # the dialog's close event (a queued task) hands focus back to its opener; typing before
    # that lands would go to the button, so wait for it as a keyboard user would
    await expect(page.locator("#canned-manage")).to_be_focused()

    await expect(page.locator("#canned-button")).to_be_enabled()
    composer = page.locator("#composer-text")
    await composer.press_sequentially("/eta")  # focuses the composer, then types
    seen = f"console: {agent.console}, errors: {agent.errors}"
    await expect(composer, f"the typed shortcut is in the composer; {seen}").to_have_value("/eta")
    await expect(page.locator("#canned-list li[data-shortcut='eta']")).to_be_visible()
    await composer.press("Tab")
    await expect(composer, f"Tab inserts the rendered response; {seen}").to_have_value(
        "Hi Eve, it arrives tomorrow."
    )

    await page.click("#canned-manage")
    await page.get_by_role("button", name="Delete /eta").click()
    await expect(page.locator("#canned-manage-list li[data-id]")).to_have_count(0)
    await page.keyboard.press("Escape")
    await expect(page.locator("#canned-button")).to_be_disabled()
    assert agent.errors == []

    sup = await open_inbox(browser, hub, "sup@t.test")
    await sup.page.click("#tab-all")
    await sup.page.locator("#conv-list li[data-id] button").first.click()
    await sup.page.click("#canned-manage")
    await expect(sup.page.locator("#canned-scope-set")).to_be_visible()  # may write team ones
