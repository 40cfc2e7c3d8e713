"""The embeddable widget in headless Chromium (Debian's, driven by Playwright; no download).

The host page is served from a *different origin* than the chat server, as on a real customer
site, so CORS and the per-site origin allow-list are exercised for real. Screenshots of the key
states go to ``var/test-artifacts/widget/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from channels.base import Address, AddressKind, ChannelKind, Outbound
from channels.webchat.config import FieldType, FormField, SiteConfig
from channels.webchat.devserver import DevStack, dev_stack, serving
from channels.webchat.stores import MarkStatus

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("CONTACTHUB_ARTIFACTS", "var/test-artifacts")) / "widget"


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (if plain) PNG so the browser has something to decode and show."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = make_png(96, 64, (40, 160, 90))
PRECHAT = (
    FormField("name", FieldType.TEXT, {"en": "Your name", "fr": "Votre nom"}, required=True),
    FormField(
        "topic", FieldType.SELECT, {"en": "Topic", "fr": "Sujet"}, options=("billing", "tech")
    ),
)
# the host page's CSS tries hard to restyle every button and list: the shadow DOM keeps it out
HOST_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Shop</title>
<style>button {{ background: rgb(255, 0, 0) !important; font-size: 40px !important; }}
ol, li {{ display: none !important; }}</style></head>
<body><h1>Our shop</h1><a href="#top">A link on the host page</a>
<script src="{hub}/widget/loader.js" data-site-key="{key}" {extra} async></script>
</body></html>"""


def chromium_or_fail() -> str:
    if not Path(CHROMIUM).exists() or shutil.which("node") is None:
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/servers/browser.sh`")
    return CHROMIUM


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_or_fail()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


class Site:
    """A customer's web site on its own origin, embedding the widget from the chat server."""

    def __init__(self, stack: DevStack, host_url: str) -> None:
        self.stack, self.url = stack, host_url


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with dev_stack() as stack:

        async def page(request: Request) -> HTMLResponse:
            key = request.query_params.get("key", "shop")
            extra = 'data-locale="fr"' if request.query_params.get("lang") == "fr" else ""
            return HTMLResponse(
                HOST_PAGE.format(
                    hub=stack.url, key=key, extra=extra, lang=request.query_params.get("lang", "en")
                )
            )

        async with serving(Starlette(routes=[Route("/", page)])) as host_url:
            stack.sites.sites["shop"] = SiteConfig(
                "shop",
                name="Shop support",
                allowed_origins=(host_url,),
                prechat_fields=PRECHAT,
                agent_name="Ada",
                greeting={"en": "Hi! Ask us anything.", "fr": "Bonjour ! Posez vos questions."},
            )
            stack.sites.sites["elsewhere"] = SiteConfig(
                "elsewhere", allowed_origins=("https://other.example",)
            )
            yield Site(stack, host_url)


async def agent_reply(stack: DevStack, text: str, key: str, **extra: Any) -> None:
    inbound = stack.ingest.inbounds[-1]
    receipt = stack.ingest.receipts[(inbound.channel_id, inbound.external_id)]
    await stack.channel.send(
        Outbound(
            channel=ChannelKind.WEBCHAT,
            channel_id=inbound.channel_id,
            conversation_id=receipt.conversation_id,
            to=Address(AddressKind.VISITOR, inbound.sender.value),
            text=text,
            idempotency_key=key,
            author_name="Grace",
            **extra,
        )
    )


async def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    """Wait until the server side has seen what the browser did."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def test_visitor_chats_resumes_after_reload_and_sends_a_file(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    stack = site.stack
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(site.url + "/")
    launcher = page.get_by_role("button", name="Open chat")
    await expect(launcher).to_be_visible()
    # the host's `button { background: red !important }` does not reach into the shadow root
    background = await launcher.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background != "rgb(255, 0, 0)"
    await shot(page, "01-launcher")

    await launcher.click()
    dialog = page.get_by_role("dialog", name="Shop support")
    await expect(dialog).to_be_visible()
    await expect(page.get_by_label("Your name *")).to_be_focused()
    await expect(dialog.get_by_text("Hi! Ask us anything.")).to_be_visible()
    await page.get_by_label("Your name *").fill("Bo Visitor")
    await page.get_by_label("Topic").select_option("tech")
    await shot(page, "02-prechat")
    await page.get_by_role("button", name="Start chat").click()

    composer = page.get_by_label("Type your message")
    await expect(composer).to_be_focused()
    await composer.fill("My order did not arrive")
    await composer.press("Enter")
    log = page.get_by_role("log")
    await expect(log.get_by_text("My order did not arrive")).to_be_visible()
    await expect(log.locator("li.visitor .status")).to_have_text("Sent")
    inbound = stack.ingest.inbounds[-1]
    assert inbound.text == "My order did not arrive"
    assert inbound.metadata["prechat"] == {"name": "Bo Visitor", "topic": "tech"}
    assert inbound.metadata["origin"] == site.url
    assert inbound.metadata["page_url"] == site.url + "/"

    await stack.channel.send_typing("shop", inbound.sender.value, True, "Grace")
    await expect(page.get_by_text("Grace is typing…")).to_be_visible()
    await agent_reply(stack, "Sorry about that, let me check.", "r1")
    await expect(log.get_by_text("Sorry about that, let me check.")).to_be_visible()
    await expect(page.get_by_text("Grace is typing…")).to_be_hidden()
    await eventually(lambda: "read" in [s.kind for s in stack.signals.signals])
    ack_id = stack.ingest.receipts[("shop", inbound.external_id)].interaction_id
    await stack.channel.mark("shop", inbound.sender.value, [ack_id], MarkStatus.READ)
    await expect(log.locator("li.visitor .status")).to_have_text("Read")
    await shot(page, "03-chatting")

    # reload: same visitor (token in localStorage), history back, panel stays open
    await page.reload()
    log = page.get_by_role("log")
    await expect(log.get_by_text("My order did not arrive")).to_be_visible()
    await expect(log.get_by_text("Sorry about that, let me check.")).to_be_visible()
    await expect(page.get_by_label("Your name *")).to_have_count(0)  # pre-chat not asked again
    assert len({i.sender for i in stack.ingest.inbounds}) == 1

    # an attachment, through the hidden file input the paperclip button opens
    picture = tmp_path / "receipt.png"
    picture.write_bytes(PNG)
    async with page.expect_file_chooser() as chooser_info:
        await page.get_by_role("button", name="Attach a file").click()
    await (await chooser_info.value).set_files(str(picture))
    await expect(page.get_by_text("receipt.png")).to_be_visible()
    await page.get_by_role("button", name="Send", exact=True).click()
    picture_in_log = log.get_by_role("img", name="receipt.png")
    await expect(picture_in_log).to_be_visible()
    assert await picture_in_log.evaluate("img => img.complete && img.naturalWidth") == 96
    await eventually(lambda: len(stack.ingest.inbounds) == 2)
    [attachment] = stack.ingest.inbounds[-1].attachments
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "receipt.png",
        "image/png",
        PNG,
    )
    await agent_reply(
        stack,
        "Here is your label",
        "r2",
        attachments=(),
        metadata={"author_avatar_url": "/avatar.png"},
    )
    await expect(log.get_by_text("Here is your label")).to_be_visible()
    # a relative avatar URL resolves against the chat server; one that fails to load falls
    # back to the agent's initial instead of a broken image
    await expect(log.locator("li.agent").last.locator(".avatar")).to_have_text("G")
    await shot(page, "04-attachment")
    await context.close()


async def test_keyboard_only_and_unread_announcement(browser: Browser, site: Site) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(site.url + "/")
    launcher = page.get_by_role("button", name="Open chat")
    await expect(launcher).to_be_visible()
    await page.keyboard.press("Tab")  # the host page's link
    await page.keyboard.press("Tab")  # the launcher, inside the shadow root
    await expect(launcher).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_label("Your name *")).to_be_focused()
    await page.keyboard.type("Kay Board")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Topic")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Start chat")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Type your message")).to_be_focused()
    await page.keyboard.type("typed without a mouse")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("log").get_by_text("typed without a mouse")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_be_hidden()
    await expect(launcher).to_be_focused()

    # closed panel: a reply raises the unread badge and is announced to screen readers
    await agent_reply(site.stack, "Reply while closed", "k1")
    await expect(page.get_by_role("button", name="Open chat (1 new messages)")).to_be_visible()
    await expect(page.locator("#contacthub-widget [aria-live=assertive]")).to_have_text(
        "New message from Grace"
    )
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("log").get_by_text("Reply while closed")).to_be_visible()
    await shot(page, "05-keyboard")
    await context.close()


async def test_offline_form_in_french(browser: Browser, site: Site) -> None:
    site.stack.availability.offline.add("shop")
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await page.goto(site.url + "/?lang=fr")
    await page.get_by_role("button", name="Ouvrir la discussion").click()
    await expect(page.get_by_text("Nous sommes absents")).to_be_visible()
    await expect(page.get_by_text("Bonjour ! Posez vos questions.")).to_be_visible()
    await expect(page.get_by_label("Nom *")).to_be_focused()
    await page.get_by_label("Nom *").fill("Chloé")
    await page.get_by_label("E-mail *").fill("chloe@example.fr")
    await page.get_by_label("Votre message", exact=True).fill("Rappelez-moi demain")
    await page.get_by_role("button", name="Envoyer le message").click()
    await expect(page.get_by_text("Merci ! Nous avons bien reçu votre message")).to_be_visible()
    await expect(page.get_by_role("log").get_by_text("Rappelez-moi demain")).to_be_visible()
    await expect(page.get_by_label("Votre nom *")).to_be_hidden()  # no pre-chat after that
    await expect(page.get_by_label("Écrivez votre message")).to_be_visible()
    inbound = site.stack.ingest.inbounds[-1]
    assert inbound.text == "Rappelez-moi demain" and inbound.sender_name == "Chloé"
    assert inbound.metadata["offline_form"] == {"name": "Chloé", "email": "chloe@example.fr"}
    await shot(page, "06-offline-fr")
    await context.close()


async def test_origin_not_on_the_allow_list_gets_no_widget(browser: Browser, site: Site) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    warnings: list[str] = []
    page.on("console", lambda msg: warnings.append(msg.text))
    await page.goto(site.url + "/?key=elsewhere")
    await expect(page.locator("#contacthub-widget")).to_have_count(0)
    assert any("origin_not_allowed" in w for w in warnings)
    assert site.stack.ingest.inbounds == []
    await context.close()


async def test_hub_restart_reconnects_and_catches_up(browser: Browser, site: Site) -> None:
    stack = site.stack
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(site.url + "/")
    await page.get_by_role("button", name="Open chat").click()
    await page.get_by_label("Your name *").fill("Re Start")
    await page.get_by_role("button", name="Start chat").click()
    composer = page.get_by_label("Type your message")
    await composer.fill("before the restart")
    await composer.press("Enter")
    log = page.get_by_role("log")
    await expect(log.locator("li.visitor .status")).to_have_text("Sent")

    # the hub restarts (sockets dropped, same stores); meanwhile an agent replies and the
    # visitor types a message, which waits in the widget's outbox
    await stack.server.stop()
    await expect(page.get_by_text("Reconnecting…")).to_be_visible()
    await agent_reply(stack, "sent during the outage", "gap-1")
    await composer.fill("typed while offline")
    await composer.press("Enter")
    await expect(log.locator("li.visitor .status").last).to_have_text("Sending…")
    await stack.server.start()
    # the widget reconnects by itself with its token, flushes its outbox, fetches what it missed
    await expect(log.get_by_text("sent during the outage")).to_be_visible(timeout=10_000)
    await expect(page.get_by_text("Reconnecting…")).to_be_hidden()
    await expect(log.locator("li.visitor .status").last).to_have_text("Sent")
    await shot(page, "07-after-restart")
    assert [i.text for i in stack.ingest.inbounds] == ["before the restart", "typed while offline"]
    assert len({i.sender for i in stack.ingest.inbounds}) == 1
    texts = await log.locator("li .bubble").all_text_contents()
    assert [t.split(": ", 1)[1] for t in texts] == [
        "before the restart",
        "sent during the outage",
        "typed while offline",
    ]
    await context.close()
