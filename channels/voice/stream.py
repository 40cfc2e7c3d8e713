"""The ARI events WebSocket, kept open for as long as the channel runs.

Asterisk only delivers events to a Stasis app while its WebSocket is connected; events that happen
while it is down are lost. So :func:`event_stream` never gives up on transient failures: it
reconnects with exponential backoff (with jitter so many hubs do not reconnect in lock-step) and
yields a :class:`Connected` marker after every (re)connect. The consumer reacts to that marker by
reconciling: asking ARI which channels are still in the app and putting each back where it
belongs. Bad credentials are permanent and raised, not retried.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from channels.base import ParseError, PermanentChannelError
from channels.voice.events import Event, parse_event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Connected:
    """The stream (re)connected; ``attempt`` 0 is the first connection of this run."""

    attempt: int


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter; pure apart from the injected random source."""

    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 10.0
    failures: int = 0

    def next_delay(self, rand: Callable[[], float] = random.random) -> float:
        cap = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        return cap / 2 + rand() * cap / 2

    def reset(self) -> None:
        self.failures = 0


def events_url(ari_url: str, app: str) -> str:
    """``http://host:port/ari`` -> ``ws://host:port/ari/events?app=<app>``."""
    parts = urlsplit(ari_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/events",
                       f"app={quote(app)}&subscribeAll=false", ""))


async def event_stream(
    ari_url: str,
    app: str,
    user: str,
    password: str,
    *,
    backoff: Backoff | None = None,
    open_timeout: float = 5.0,
) -> AsyncGenerator[Event | Connected, None]:
    """Yield parsed events forever, reconnecting on failures; a :class:`Connected` per connect."""
    url = events_url(ari_url, app)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    backoff = backoff or Backoff()
    attempt = 0
    while True:
        try:
            async with connect(url, additional_headers=headers, open_timeout=open_timeout,
                               ping_interval=10, ping_timeout=10, max_size=2**22) as ws:
                log.info("ARI events connected (app=%s, attempt=%d)", app, attempt)
                backoff.reset()
                yield Connected(attempt)
                attempt += 1
                async for message in ws:
                    try:
                        yield parse_event(message)
                    except ParseError as exc:
                        log.warning("dropping malformed ARI event: %s (field=%s)", exc, exc.field)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise PermanentChannelError(f"ARI events refused: HTTP {status}",
                                            code="ari_auth") from exc
            log.warning("ARI events rejected with HTTP %d; retrying", status)
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("ARI events connection lost: %r", exc)
        delay = backoff.next_delay()
        log.info("reconnecting ARI events in %.2fs", delay)
        await asyncio.sleep(delay)
