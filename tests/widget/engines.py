"""Firefox and WebKit for the widget tests, driven over the W3C WebDriver protocols.

Playwright only drives its own patched Firefox and WebKit builds, which it would have to download
(this machine cannot). So the stock Debian browsers are driven directly:

- **Firefox ESR** through WebDriver BiDi, which Firefox speaks natively over a WebSocket when
  started with ``--remote-debugging-port`` (no geckodriver needed);
- **WebKit** (Safari's engine, here as WebKitGTK's MiniBrowser) through classic W3C WebDriver
  served by ``WebKitWebDriver``, on a private Xvfb display.

Both sit behind one small :class:`Engine` interface that works on elements inside the widget's
shadow root, so a test reads the same for either. Clicks and typing are real input events sent by
the browser's automation layer, not ``element.click()`` from script.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import websockets

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
ENTER = "\ue007"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element reference key
# an element inside the widget's (open) shadow root, or null
IN_WIDGET = (
    "(css) => { const host = document.querySelector('#contacthub-widget');"
    " return host && host.shadowRoot ? host.shadowRoot.querySelector(css) : null; }"
)
IN_DOCUMENT = "(css) => document.querySelector(css)"


class Engine(Protocol):
    """``click``/``type`` find ``css`` with ``finder`` (JS ``(css) => Element | null``): the
    widget's shadow root by default, :data:`IN_DOCUMENT` for ordinary pages such as the inbox."""

    name: str
    finder: str

    async def open(self, url: str) -> None: ...
    async def reload(self) -> None: ...
    async def call(self, function: str, *args: Any) -> Any:
        """Run ``function`` (JS source of a function) in the page with JSON ``args``."""
        ...
    async def click(self, css: str) -> None: ...
    async def type(self, css: str, text: str) -> None: ...
    async def screenshot(self, path: Path) -> None: ...


async def wait_until(engine: Engine, function: str, *args: Any, timeout: float = 10) -> Any:
    """Poll a page predicate until it returns something truthy (the browser is async too)."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await engine.call(function, *args)
                if last:
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{engine.name}: {function} stayed {last!r} for {timeout}s") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(path: str, package: str) -> str:
    if not Path(path).exists():
        pytest.fail(f"{path} is missing (Debian {package}): run `bash tests/servers/browser.sh`")
    return path


# --- Firefox over WebDriver BiDi -------------------------------------------------------------


class FirefoxBidi:
    name = "firefox"
    finder = IN_WIDGET

    def __init__(self, ws: Any, context: str) -> None:
        self._ws, self._context = ws, context
        self._ids = itertools.count(1)

    async def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:  # events (none subscribed) and answers share the socket
            message = json.loads(await self._ws.recv())
            if message.get("id") == ident:
                if message.get("type") == "error":
                    raise AssertionError(f"BiDi {method}: {message.get('message')}")
                result: dict[str, Any] = message["result"]
                return result

    async def open(self, url: str) -> None:
        await self.command(
            "browsingContext.navigate", {"context": self._context, "url": url, "wait": "complete"}
        )

    async def reload(self) -> None:
        await self.command("browsingContext.reload", {"context": self._context, "wait": "complete"})

    async def _call_raw(self, function: str, args: list[dict[str, Any]]) -> dict[str, Any]:
        result = await self.command(
            "script.callFunction",
            {
                "functionDeclaration": function,
                "arguments": args,
                "target": {"context": self._context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
        )
        if result.get("type") == "exception":
            raise AssertionError(f"firefox: {result['exceptionDetails'].get('text')}")
        value: dict[str, Any] = result["result"]
        return value

    async def call(self, function: str, *args: Any) -> Any:
        wrapped = f"(json) => JSON.stringify(({function})(...JSON.parse(json)))"
        value = await self._call_raw(wrapped, [{"type": "string", "value": json.dumps(args)}])
        return None if value.get("type") != "string" else json.loads(value["value"])

    async def _element(self, css: str) -> str:
        value = await self._call_raw(self.finder, [{"type": "string", "value": css}])
        if value.get("type") != "node":
            raise AssertionError(f"firefox: no {css!r} on the page")
        return str(value["sharedId"])

    async def click(self, css: str) -> None:
        element = await self._element(css)
        origin = {"type": "element", "element": {"sharedId": element}}
        pointer = [
            {"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        await self.command(
            "input.performActions",
            {
                "context": self._context,
                "actions": [{"type": "pointer", "id": "mouse", "actions": pointer}],
            },
        )

    async def type(self, css: str, text: str) -> None:
        await self.click(css)  # focus, as a user would
        keys: list[dict[str, Any]] = []
        for char in text:
            keys += [{"type": "keyDown", "value": char}, {"type": "keyUp", "value": char}]
        await self.command(
            "input.performActions",
            {"context": self._context, "actions": [{"type": "key", "id": "kb", "actions": keys}]},
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.command("browsingContext.captureScreenshot", {"context": self._context})
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def firefox() -> AsyncIterator[FirefoxBidi]:
    binary = need(FIREFOX, "firefox-esr")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ch-firefox-") as profile:
        # a fresh profile that stays off the network (this machine has none outside)
        Path(profile, "user.js").write_text(
            'user_pref("browser.shell.checkDefaultBrowser", false);\n'
            'user_pref("datareporting.policy.dataSubmissionEnabled", false);\n'
            'user_pref("app.update.disabledForTesting", true);\n'
            'user_pref("network.captive-portal-service.enabled", false);\n'
            'user_pref("browser.safebrowsing.update.enabled", false);\n'
        )
        proc = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-remote", "--profile", profile,
            f"--remote-debugging-port={port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(60):
                while b"WebDriver BiDi listening" not in await proc.stdout.readline():
                    if proc.returncode is not None:
                        raise AssertionError("firefox-esr exited before WebDriver BiDi came up")
            drain = asyncio.create_task(proc.stdout.read())  # keep its pipe from filling up
            async with websockets.connect(f"ws://127.0.0.1:{port}/session", max_size=None) as ws:
                driver = FirefoxBidi(ws, "")
                await driver.command("session.new", {"capabilities": {}})
                tree = await driver.command("browsingContext.getTree", {})
                driver._context = tree["contexts"][0]["context"]
                yield driver
                with contextlib.suppress(Exception):
                    await driver.command("browser.close", {})
            drain.cancel()
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


# --- WebKit over classic W3C WebDriver -------------------------------------------------------


class WebKitDriver:
    name = "webkit"
    finder = IN_WIDGET

    def __init__(self, http: httpx.AsyncClient, session: str) -> None:
        self._http, self._session = http, session

    async def command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, f"/session/{self._session}{path}", json=body)
        payload = response.json()
        if response.status_code >= 400:
            raise AssertionError(f"WebDriver {path}: {payload['value'].get('message')}")
        return payload["value"]

    async def open(self, url: str) -> None:
        await self.command("POST", "/url", {"url": url})

    async def reload(self) -> None:
        await self.command("POST", "/refresh", {})

    async def call(self, function: str, *args: Any) -> Any:
        script = f"return JSON.stringify(({function})(...arguments));"
        value = await self.command("POST", "/execute/sync", {"script": script, "args": list(args)})
        return None if value is None else json.loads(value)

    async def _element(self, css: str) -> str:
        script = f"return ({self.finder})(arguments[0]);"
        value = await self.command("POST", "/execute/sync", {"script": script, "args": [css]})
        if not isinstance(value, dict) or ELEMENT_KEY not in value:
            raise AssertionError(f"webkit: no {css!r} on the page: {value!r}")
        return str(value[ELEMENT_KEY])

    async def click(self, css: str) -> None:
        await self.command("POST", f"/element/{await self._element(css)}/click", {})

    async def type(self, css: str, text: str) -> None:
        element = await self._element(css)
        await self.command("POST", f"/element/{element}/value", {"text": text})

    async def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(await self.command("GET", "/screenshot")))


@contextlib.asynccontextmanager
async def _xvfb() -> AsyncIterator[str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is missing (Debian package xvfb): run `bash tests/servers/browser.sh`")
    read_fd, write_fd = os.pipe()
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients
    proc = await asyncio.create_subprocess_exec(
        xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp",
        pass_fds=(write_fd,), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write_fd)
    try:
        number = await asyncio.to_thread(os.read, read_fd, 16)
        if not number.strip():
            raise AssertionError("Xvfb did not start")
        yield f":{number.decode().strip()}"
    finally:
        os.close(read_fd)
        proc.terminate()
        await proc.wait()


@contextlib.asynccontextmanager
async def webkit() -> AsyncIterator[WebKitDriver]:
    driver_bin = need(WEBKIT_DRIVER, "webkit2gtk-driver")
    browser = need(MINIBROWSER, "libwebkit2gtk-4.1-0")
    port = _free_port()
    async with _xvfb() as display:
        proc = await asyncio.create_subprocess_exec(
            driver_bin, f"--port={port}", env={**os.environ, "DISPLAY": display},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                async with asyncio.timeout(30):
                    while True:
                        with contextlib.suppress(httpx.TransportError):
                            if (await http.get("/status")).status_code == 200:
                                break
                        await asyncio.sleep(0.1)
                options = {"binary": browser, "args": ["--automation"]}
                caps = {"browserName": "MiniBrowser", "webkitgtk:browserOptions": options}
                created = await http.post("/session", json={"capabilities": {"alwaysMatch": caps}})
                session = created.json()["value"]["sessionId"]
                try:
                    yield WebKitDriver(http, session)
                finally:
                    with contextlib.suppress(httpx.HTTPError):
                        await http.delete(f"/session/{session}")
        finally:
            proc.terminate()
            await proc.wait()


@contextlib.asynccontextmanager
async def launch(name: str) -> AsyncIterator[Engine]:
    factory = {"firefox": firefox, "webkit": webkit}[name]
    async with factory() as engine:
        yield engine
