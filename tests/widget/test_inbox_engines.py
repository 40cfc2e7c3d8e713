"""The agent inbox in Firefox and WebKit: sign in, go ready, take an offer live, reply.

Agents use whatever browser their company gives them; the full inbox behaviour is covered in
Chromium (``test_inbox.py``); this checks that the same page works in the other two engines
against the real hub (login form, socket.io ``/agent`` push, offer card, composer).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hub.server import PASSWORD
from tests.widget.engines import IN_DOCUMENT, launch, wait_until
from tests.widget.inbox_helpers import (
    HubServer,
    StandInChat,
    chat_fixture,  # noqa: F401  (fixture "chat")
    chat_in,
    hub_fixture,  # noqa: F401  (fixture "hub")
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)
from tests.widget.test_widget_browser import eventually

ARTIFACTS = Path(os.environ.get("CONTACTHUB_ARTIFACTS", "var/test-artifacts")) / "inbox-engines"

ATTR = "(css, name) => document.querySelector(css)?.getAttribute(name) ?? null"
TEXT = "(css) => document.querySelector(css)?.textContent ?? ''"
VISIBLE = """(css) => {
  const el = document.querySelector(css); return !!el && el.getClientRects().length > 0; }"""
MINE = "() => document.querySelectorAll('#conv-list li[data-id]').length"
# a <select> is a native popup in both engines; pick the option the way its change handler sees
GO_READY = """() => { const s = document.querySelector('#presence-select');
  s.value = 'ready'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; }"""


@pytest.mark.parametrize("engine_name", ["firefox", "webkit"])
async def test_inbox_takes_an_offer_and_replies(
    engine_name: str, hub: HubServer, chat: StandInChat
) -> None:
    async with launch(engine_name) as engine:
        engine.finder = IN_DOCUMENT
        await engine.open(f"{hub.url}/inbox/")
        await wait_until(engine, VISIBLE, "#login-email")
        await engine.type("#login-email", "agent@t.test")
        await engine.type("#login-password", PASSWORD)
        await engine.click("#login-form button[type=submit]")
        await wait_until(engine, f"() => ({ATTR})('#conn', 'data-state') === 'up'", timeout=15)
        await engine.call(GO_READY)
        await wait_until(engine, f"() => ({ATTR})('#presence-dot', 'data-presence') === 'ready'")

        await hub.ingest(chat_in("v-" + engine_name, "m-" + engine_name, "Where is my parcel?"))
        await wait_until(engine, VISIBLE, "[data-testid=offer-accept]", timeout=15)
        await engine.click("[data-testid=offer-accept]")
        await wait_until(
            engine, f"() => ({TEXT})('#timeline .bubble.in .text') === 'Where is my parcel?'"
        )

        # the "Mine" list picks the conversation up live
        await wait_until(engine, f"() => ({MINE})() === 1")
        reply = f"On its way ({engine_name})"
        await engine.type("#composer-text", reply)
        await engine.click("#send-button")
        await eventually(lambda: [o.text for o in chat.sent] == [reply], timeout=10)
        await wait_until(engine, f"() => ({TEXT})('#timeline .bubble.out .text') === {reply!r}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await engine.screenshot(ARTIFACTS / f"{engine_name}-inbox.png")
        assert str(chat.sent[0].to) == f"visitor:v-{engine_name}"
