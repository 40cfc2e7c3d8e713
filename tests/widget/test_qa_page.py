"""The QA page in headless Chromium against the real hub (SQLite, search index, media store).

A QA user signs in, searches a word spoken in a call, sees it highlighted, opens the call,
plays it, changes speed and seeks (served by Range requests), scores it with a scorecard, and
sees the agent's trend move from no evaluations to one. Screenshots go to /tmp/qa.png and
/tmp/qa-trend.png.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, update

from channels.base import Address, AddressKind, Attachment, ChannelKind, Inbound, InboundKind
from hub.db.models import Conversation, MediaAccess, QaEvaluation
from tests.conftest import Db
from tests.hub.server import PASSWORD
from tests.widget.inbox_helpers import (
    CHROMIUM,
    HubServer,
    Watched,
    browser_fixture,  # noqa: F401  (fixture "browser")
    chat_fixture,  # noqa: F401  (fixture "chat")
    email_in,
    fax_in,
    hub_fixture,  # noqa: F401  (fixture "hub")
    make_png,
    make_wav,
    sms_in,
    sqlite_db_fixture,  # noqa: F401  (fixture "sqlite_db")
)

FORM = {
    "name": "Call quality",
    "criteria": [
        {"key": "greeting", "label": "Greeting", "weight": 2, "max": 5,
         "description": "Named the company and themselves"},
        {"key": "resolved", "label": "Resolved", "weight": 1, "kind": "yes_no"},
        {"key": "upsell", "label": "Upsell", "weight": 1, "max": 4},
    ],
}  # fmt: skip


async def as_user(hub: HubServer, email: str) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=hub.url, timeout=10) as c:
        r = await c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    return httpx.AsyncClient(base_url=hub.url, timeout=10, headers=headers)


async def sign_in(browser: Browser, hub: HubServer, email: str) -> Watched:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    watched = Watched(await context.new_page(), context)
    page = watched.page
    await page.goto(f"{hub.url}/qa/")
    await page.fill("#login-email", email)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#me-role")).to_have_text("qa")
    return watched


async def audio_state(page: Page) -> dict[str, float]:
    result: dict[str, float] = await page.eval_on_selector(
        "#timeline audio",
        "a => ({t: a.currentTime, d: a.duration, rate: a.playbackRate, paused: a.paused ? 1 : 0})",
    )
    return result


async def wait_audio(page: Page, check: Callable[[dict[str, float]], bool]) -> dict[str, float]:
    """Poll the player (``wait_for_function`` would need eval, which the page's CSP forbids)."""
    deadline = time.monotonic() + 10
    while True:
        state = await audio_state(page)
        if check(state):
            return state
        assert time.monotonic() < deadline, f"audio never reached the state: {state}"
        await asyncio.sleep(0.05)


async def wait_searchable(hub: HubServer, text: str, want: int, **params: str) -> None:
    """Until the index has caught up (it is updated asynchronously, within about a second)."""
    async with await as_user(hub, "qa@t.test") as qa:
        deadline = time.monotonic() + 5
        query = {"text": text, **params} if text else params
        while (await qa.get("/api/search", params=query)).json()["total"] < want:
            assert time.monotonic() < deadline, f"{query!r} not indexed"
            await asyncio.sleep(0.05)


async def test_qa_reviews_plays_scores_and_sees_the_trend(
    browser: Browser, hub: HubServer, sqlite_db: Db
) -> None:
    assert CHROMIUM
    wav = make_wav(seconds=4.0)
    sha = hashlib.sha256(wav).hexdigest()
    call = await hub.ingest(
        Inbound(
            channel=ChannelKind.VOICE,
            channel_id="+14155550100",
            external_id="call-1",
            sender=Address(AddressKind.PHONE, "+14155550123"),
            kind=InboundKind.CALL,
            text="Customer asked where the refund for order 77 is",
            attachments=(Attachment("recording.wav", "audio/wav", wav),),
            metadata={"duration_s": 4},
        )
    )
    await hub.ingest(sms_in("+14155550999", "s-1", "<img src=x onerror=alert(1)> refund & more"))
    await hub.ingest(sms_in("+14155550998", "s-2", "opening hours please"))
    async with await as_user(hub, "sup@t.test") as sup:
        form = (await sup.post("/api/qa/forms", json=FORM)).json()
        agents = (await sup.get("/api/agents")).json()["items"]
    agent_id = next(a["id"] for a in agents if a["name"] == "Ava Agent")
    async with sqlite_db.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.id == call.conversation_id)
            .values(assignee_id=agent_id)
        )

    await wait_searchable(hub, "refund", 2)
    qa = await sign_in(browser, hub, "qa@t.test")
    page = qa.page
    headers = (await page.request.get(f"{hub.url}/qa/")).headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"

    # the agent's trend before any score
    await page.click("#tab-trends")
    await page.select_option("#trend-agent", agent_id)
    await expect(page.locator("#trend-summary")).to_have_text(
        "No evaluations for Ava Agent in this range."
    )
    await expect(page.get_by_test_id("trend-point")).to_have_count(0)
    await page.keyboard.press("/")  # back to the search box from anywhere
    await expect(page.locator("#q")).to_be_focused()

    # search a word: two hits, highlighted; markup in customer text stays text
    await page.fill("#q", "refund")
    await page.keyboard.press("Enter")
    hits = page.get_by_test_id("hit")
    await expect(hits).to_have_count(2)
    await expect(page.locator("#results mark")).to_have_count(2)
    assert set(await page.locator("#results mark").all_inner_texts()) == {"refund"}
    await expect(page.locator("#results img")).to_have_count(0)
    await expect(
        page.locator("#results").get_by_text("<img src=x onerror=alert(1)>")
    ).to_have_count(1)
    await page.select_option("#f-channel", "voice")  # a facet narrows to the call
    await expect(hits).to_have_count(1)
    await expect(page.locator("#f-channel option[value=voice]")).to_have_text("Call (1)")
    await expect(hits.first).to_contain_text("♪ recording")

    # open it with the keyboard; the recording plays, speeds up and seeks
    await hits.first.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#timeline .call.hit-target")).to_be_visible()
    await expect(page.get_by_test_id("clock")).to_have_text("0:00 / 0:04")
    await page.get_by_test_id("play").click()
    await expect(page.get_by_test_id("play")).to_have_text("⏸ Pause")
    await wait_audio(page, lambda a: a["t"] > 0.2 and not a["paused"])
    await page.get_by_test_id("speed").select_option("1.5")
    await page.get_by_test_id("play").click()  # pause
    await page.eval_on_selector(
        "[data-testid=seek]", "el => { el.value = '3'; el.dispatchEvent(new Event('input')); }"
    )
    state = await wait_audio(page, lambda a: abs(a["t"] - 3) < 0.05)
    assert state["rate"] == 1.5 and state["paused"] == 1 and abs(state["d"] - 4.0) < 0.01
    await expect(page.get_by_test_id("clock")).to_have_text("0:03 / 0:04")
    async with sqlite_db.sessions() as s:
        served = [
            (status, rng)
            for status, rng in await s.execute(
                select(MediaAccess.status, MediaAccess.range).where(MediaAccess.sha256 == sha)
            )
        ]
    assert served and all(status == 206 for status, _ in served), served  # Range, every time
    assert any(rng and rng.endswith(f"/{len(wav)}") for _, rng in served)

    # score it: greeting 4/5 (weight 2), resolved yes, upsell n/a -> (1.6 + 1) / 3 = 86.67
    await expect(page.locator("#score-form-select")).to_have_value(form["id"])
    await expect(page.locator("#score-agent")).to_have_value(agent_id)
    await expect(page.locator("#criteria .desc")).to_have_text("Named the company and themselves")
    await page.click("#score-submit")
    await expect(page.locator("#score-error")).to_contain_text("missing: Greeting")
    await page.get_by_test_id("crit-greeting-4").check()
    await page.get_by_test_id("crit-resolved-yes").check()
    await page.get_by_test_id("crit-upsell-na").check()
    await page.fill("#score-comment", "Warm greeting; offer the refund timeline sooner.")
    await page.click("#score-submit")
    await expect(page.locator("#score-result")).to_have_text("Scored 86.67 / 100 for Ava Agent")
    await expect(page.get_by_test_id("evaluation")).to_have_count(1)
    await expect(page.get_by_test_id("evaluation")).to_contain_text("Call quality v1")
    async with sqlite_db.sessions() as s:
        stored = (await s.execute(select(QaEvaluation))).scalar_one()
    assert (stored.score, stored.agent_id, stored.interaction_id) == (
        86.67,
        agent_id,
        call.interaction_id,
    )
    await page.screenshot(path="/tmp/qa.png")

    # the score is searchable: the score filter finds the scored conversation's call and its
    # QA note (the score belongs to the whole conversation)
    await wait_searchable(hub, "", 2, qa_min="80")  # the re-scored docs reached the index
    await page.select_option("#f-channel", "")
    await page.fill("#q", "")
    await page.fill("#f-qa-min", "80")
    await page.keyboard.press("Enter")
    await expect(hits).to_have_count(2)
    await expect(page.locator("#results").get_by_test_id("hit-score")).to_have_text(
        ["QA 87", "QA 87"]
    )

    # the agent's trend now has the evaluation
    await page.click("#tab-trends")
    await expect(page.locator("#trend-summary")).to_have_text(
        "1 evaluation for Ava Agent, average 86.67 / 100"
    )
    point = page.get_by_test_id("trend-point")
    await expect(point).to_have_count(1)
    await expect(point).to_have_attribute("data-average", "86.67")
    await expect(page.get_by_test_id("team-row")).to_contain_text("Ava Agent")
    await page.screenshot(path="/tmp/qa-trend.png")

    # other media open the same way: email HTML in a script-less sandbox, fax page images
    await hub.ingest(
        email_in("dana@example.com", "e-1", "Invoice 12", "<p>Your <b>invoice</b> is late</p>")
    )
    await hub.ingest(
        fax_in("+14155550777", "f-1", [make_png(40, 60, (90, 90, 90))], "invoice copy")
    )
    await wait_searchable(hub, "invoice", 2)  # indexed within a second of the ingest
    await page.click("#tab-search")
    await page.fill("#f-qa-min", "")
    await page.fill("#q", "invoice")
    await page.keyboard.press("Enter")
    await expect(hits).to_have_count(2)
    await hits.filter(has_text="Invoice 12").click()
    frame = page.locator("#timeline iframe.email-html")
    await expect(frame).to_have_attribute("sandbox", "")
    await expect(page.frame_locator("#timeline iframe.email-html").locator("b")).to_have_text(
        "invoice"
    )
    await hits.filter(has_text="invoice copy").click()
    page_img = page.locator("#timeline img.fax-page")
    await expect(page_img).to_have_count(1)
    await expect(page_img).to_have_js_property("naturalWidth", 40)
    assert qa.errors == [] and qa.dialogs == []
