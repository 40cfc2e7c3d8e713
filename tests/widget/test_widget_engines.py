"""The visitor widget in Firefox and in WebKit (Safari's engine), not only in Chromium.

Same customer site on its own origin as ``test_widget_browser`` (the fixture is shared), driven
through :mod:`tests.widget.engines`: open the launcher, fill the pre-chat form, send a message,
get the agent's reply live, reload and find the conversation resumed with its history. A
screenshot per engine goes to ``var/test-artifacts/widget-engines/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.widget.engines import ENTER, launch, wait_until
from tests.widget.test_widget_browser import Site, agent_reply, eventually, site

__all__ = ["site"]  # the fixture, re-exported so pytest finds it here

ARTIFACTS = Path(os.environ.get("CONTACTHUB_ARTIFACTS", "var/test-artifacts")) / "widget-engines"

LOG_TEXT = """() => {
  const root = document.querySelector('#contacthub-widget')?.shadowRoot;
  const log = root && root.querySelector('[role=log]');
  return log ? log.innerText : '';
}"""
HAS_IN_LOG = f"(want) => ({LOG_TEXT})().includes(want)"
VISIBLE = """(css) => {
  const el = document.querySelector('#contacthub-widget')?.shadowRoot?.querySelector(css);
  return !!el && !el.closest('[hidden]') && el.getClientRects().length > 0;
}"""
PRECHAT_NAME = "form.card:not([hidden]) input[name=name]"
PRECHAT_START = "form.card:not([hidden]) button[type=submit]"


@pytest.mark.parametrize("engine_name", ["firefox", "webkit"])
async def test_widget_chat_and_resume(engine_name: str, site: Site) -> None:
    stack = site.stack
    async with launch(engine_name) as engine:
        await engine.open(site.url + "/")
        await wait_until(engine, VISIBLE, "button.launcher")
        await engine.click("button.launcher")
        await wait_until(engine, VISIBLE, PRECHAT_NAME)
        await engine.type(PRECHAT_NAME, "Wen Kit")
        await engine.click(PRECHAT_START)
        await wait_until(engine, VISIBLE, "#ch-text")
        text = f"Hello from {engine_name}"
        await engine.type("#ch-text", text + ENTER)
        await wait_until(engine, HAS_IN_LOG, text)
        await eventually(lambda: any(i.text == text for i in stack.ingest.inbounds))
        inbound = stack.ingest.inbounds[-1]
        assert inbound.metadata["prechat"]["name"] == "Wen Kit"
        assert inbound.metadata["origin"] == site.url
        user_agent = await engine.call("() => navigator.userAgent")
        assert ("Firefox/" if engine_name == "firefox" else "AppleWebKit/") in user_agent
        assert "Chrome/" not in user_agent

        await agent_reply(stack, f"Welcome, {engine_name} user", "r-" + engine_name)
        await wait_until(engine, HAS_IN_LOG, f"Welcome, {engine_name} user")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await engine.screenshot(ARTIFACTS / f"{engine_name}-chat.png")

        # reload: the visitor token kept in localStorage resumes the same conversation
        await engine.reload()
        await wait_until(engine, HAS_IN_LOG, text)
        await wait_until(engine, HAS_IN_LOG, f"Welcome, {engine_name} user")
        assert not await engine.call(VISIBLE, PRECHAT_NAME)  # the pre-chat form is not asked again
        assert len({i.sender for i in stack.ingest.inbounds}) == 1
        assert [i.text for i in stack.ingest.inbounds] == [text]  # nothing sent twice
