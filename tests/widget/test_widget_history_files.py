"""Files survive a reload of the visitor's page: headless Chromium, the REAL hub, the shop page on
another origin (see tests/widget/test_chat_e2e.py for the stack). The agent's picture and PDF
arrive live as binary data; after the reload they come back from history as signed links to
``/widget/files/…``: the picture decodes (naturalWidth), the PDF is a download link whose bytes
the shop page can fetch (CORS for the site's allowed origin). Screenshots go to
``var/test-artifacts/chat-e2e/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect

from tests.hub.server import PASSWORD
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


async def _agent_replies_with_files(stack: Stack, label: bytes) -> None:
    """The agent answers the one assigned chat with a picture and a PDF (REST, as the inbox's
    composer does)."""
    async with httpx.AsyncClient(base_url=stack.hub.url, timeout=10) as c:
        r = await c.post("/api/auth/login", json={"email": "agent@t.test", "password": PASSWORD})
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        [conv] = (await c.get("/api/conversations", params={"assignee": "me"})).json()["items"]
        tokens = []
        for name, data, kind in [("label.png", label, "image/png"),
                                 ("form.pdf", PDF, "application/pdf")]:  # fmt: skip
            up = await c.post(
                "/api/attachments", params={"filename": name}, content=data,
                headers={"content-type": kind},
            )  # fmt: skip
            assert up.status_code == 201, up.text
            tokens.append(up.json()["token"])
        r = await c.post(
            f"/api/conversations/{conv['id']}/messages",
            json={"text": "Print this label", "attachments": tokens},
        )
        assert r.status_code == 201, r.text


async def test_visitor_reloads_and_still_sees_the_agents_files(
    browser: Browser, stack: Stack, tmp_path: Path
) -> None:
    agent = await ready_agent(browser, stack, "agent@t.test")
    visitor = await open_visitor(browser, stack)
    await visitor_says(visitor, "Can I get a return label?")
    await agent.page.get_by_test_id("offer-accept").click()
    await expect(agent.page.locator("#timeline .bubble.in .text")).to_have_text(
        "Can I get a return label?"
    )
    # the visitor's own picture too
    picture = tmp_path / "receipt.png"
    picture.write_bytes(make_png(48, 30, (200, 40, 40)))
    async with visitor.expect_file_chooser() as chooser_info:
        await visitor.get_by_role("button", name="Attach a file").click()
    await (await chooser_info.value).set_files(str(picture))
    await visitor.get_by_role("button", name="Send", exact=True).click()
    log = visitor.get_by_role("log")
    await expect(log.get_by_role("img", name="receipt.png")).to_be_visible()
    await expect(log.locator("li.msg.visitor [data-status]").last).to_have_attribute(
        "data-status", "sent"
    )

    await _agent_replies_with_files(stack, make_png(96, 64, (40, 90, 200)))
    live = log.get_by_role("img", name="label.png")
    await expect(live).to_be_visible()
    assert (await live.get_attribute("src") or "").startswith("blob:")  # binary, live
    await snap(visitor, "11-visitor-live-files")

    # a reconnect without a reload: the history's signed links replace the live copies
    await visitor.evaluate("() => window.__contacthubWidget.connection.socket.disconnect()")
    await visitor.evaluate("() => window.__contacthubWidget.connection.socket.connect()")
    signed = re.compile(rf"^{re.escape(stack.hub.url)}/widget/files/")
    await expect(live).to_have_attribute("src", signed)
    await expect(live).to_have_js_property("complete", True)
    assert await live.evaluate("img => img.naturalWidth") == 96
    await expect(log.get_by_role("img", name="label.png")).to_have_count(1)

    await visitor.reload()
    log = visitor.get_by_role("log")
    await expect(log.get_by_text("Print this label")).to_be_visible()
    for name, width in [("label.png", 96), ("receipt.png", 48)]:
        img = log.get_by_role("img", name=name)
        await expect(img).to_be_visible()
        await expect(img).to_have_js_property("complete", True)
        assert await img.evaluate("img => img.naturalWidth") == width, name
        src = await img.get_attribute("src") or ""
        assert src.startswith(f"{stack.hub.url}/widget/files/"), src
    link = log.get_by_role("link", name="form.pdf")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href") or ""
    assert href.startswith(f"{stack.hub.url}/widget/files/") and "&s=" in href
    # the shop page may read the bytes (CORS for its origin); the hub says "download it"
    got = await visitor.evaluate(
        """async (url) => { const r = await fetch(url);
            return [r.status, r.headers.get('content-disposition'),
                    Array.from(new Uint8Array(await r.arrayBuffer()))]; }""",
        href,
    )
    assert got[0] == 200 and got[1] == 'attachment; filename="form.pdf"'
    assert bytes(got[2]) == PDF
    forged = href[:-1] + ("0" if href[-1] != "0" else "1")  # the signature is the last field
    async with httpx.AsyncClient(timeout=10) as web:
        assert (await web.get(forged)).status_code == 404
    await snap(visitor, "12-visitor-files-after-reload")
    assert agent.errors == []
