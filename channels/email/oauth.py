"""OAuth2 access tokens for IMAP and SMTP (XOAUTH2, as Gmail and Microsoft 365 require).

A mailbox configured for OAuth2 holds a client id, client secret and a long-lived refresh
token; the access tokens that IMAP and SMTP accept live about an hour. :class:`TokenSource`
exchanges the refresh token at the provider's token endpoint (RFC 6749 §6) shortly before the
current access token expires, and again when a server refuses a token (revoked, or the clock
was off): the caller then calls :meth:`TokenSource.invalidate` and asks once more. A refresh
token the provider rotates is kept for the life of the process (the configured one is used
again after a restart, which Microsoft and Google both accept until it expires).

Secrets (client secret, refresh and access tokens) are never logged and never part of an error
message: errors carry the endpoint's OAuth2 ``error`` code at most.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.base import PermanentChannelError, TransientChannelError

log = logging.getLogger(__name__)

_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,60}$")


@dataclass(frozen=True, slots=True)
class OAuth2Config:
    """Where and how to refresh access tokens for one mailbox (or one account)."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scope: str | None = None  # e.g. "https://outlook.office.com/IMAP.AccessAsUser.All"
    refresh_margin_s: float = 120.0  # refresh this long before the token expires
    timeout_s: float = 20.0


class TokenSource:
    """A cached access token for one :class:`OAuth2Config`, refreshed when due or refused."""

    def __init__(self, cfg: OAuth2Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._refresh_token = cfg.refresh_token
        self._access: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def token(self) -> str:
        """A valid access token (refreshed first when missing or about to expire)."""
        async with self._lock:
            due = self._expires_at - self.cfg.refresh_margin_s
            if self._access is None or self._clock() >= due:
                await self._refresh()
            assert self._access is not None
            return self._access

    def invalidate(self, token: str) -> None:
        """A server refused ``token``: the next :meth:`token` refreshes."""
        if self._access == token:
            self._access = None

    async def _refresh(self) -> None:
        cfg = self.cfg
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token,
                "client_id": cfg.client_id, "client_secret": cfg.client_secret}
        if cfg.scope:
            form["scope"] = cfg.scope
        try:
            async with httpx.AsyncClient(timeout=cfg.timeout_s) as client:
                response = await client.post(cfg.token_url, data=form,
                                             headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise TransientChannelError(f"OAuth2 token endpoint unreachable ({type(exc).__name__})",
                                        code="oauth_unreachable") from None
        body = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientChannelError(f"OAuth2 token endpoint answered {response.status_code}",
                                        code="oauth_unavailable")
        if response.status_code != 200:
            error = str(body.get("error", ""))
            error = error if _ERROR_CODE.match(error) else "unknown"
            raise PermanentChannelError(
                f"OAuth2 token refresh refused ({response.status_code} {error}); check the "
                "client id, secret and refresh token", code="oauth_refresh_refused")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise PermanentChannelError("OAuth2 token endpoint answered without an access_token",
                                        code="oauth_bad_response")
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        self._access, self._expires_at = access, self._clock() + lifetime
        self.refreshes += 1
        log.info("OAuth2 access token refreshed for client %s (valid %.0fs)", cfg.client_id,
                 lifetime)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_sources: dict[OAuth2Config, TokenSource] = {}


def token_source(cfg: OAuth2Config) -> TokenSource:
    """The process's one :class:`TokenSource` per configuration (IMAP, SMTP and the Sent-folder
    append of a mailbox share it, so one refresh serves all three)."""
    source = _sources.get(cfg)
    if source is None:
        source = _sources[cfg] = TokenSource(cfg)
    return source
