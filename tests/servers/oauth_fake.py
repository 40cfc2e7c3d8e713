"""FAKE of a remote OAuth2 provider (Google / Microsoft identity platform) for the email tests.

The real token endpoints are SaaS we cannot reach from tests, so this local stand-in plays both
of the provider's roles, over real HTTP on 127.0.0.1 (a thread, stdlib ``http.server``):

- ``POST /token``: RFC 6749 §6 refresh-token grant; checks client id and secret and the refresh
  token, issues a random access token valid ``lifetime_s`` seconds;
- ``POST /introspect``: RFC 7662 token introspection, which the *real* Dovecot's ``oauth2``
  passdb calls to validate the token an IMAP client sends with XOAUTH2 / OAUTHBEARER
  (``{"active": true, "username": ...}``); the aiosmtpd test server asks :meth:`validate`.

Tests revoke tokens (:meth:`revoke`), shorten lifetimes and count refreshes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_ID = "contacthub-test-client"
CLIENT_SECRET = "test-client-secret"


@dataclass
class _Grant:
    username: str
    expires_at: float


@dataclass
class FakeOAuthProvider:
    """Users are identified by refresh token: :meth:`refresh_token_for` hands one out."""

    lifetime_s: float = 3600.0
    refreshes: int = 0
    introspections: int = 0
    fail_next_refresh: str | None = None  # an OAuth2 error code the next /token answers
    _refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> username
    _access: dict[str, _Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    def refresh_token_for(self, username: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = username
        return token

    def revoke(self, access_token: str | None = None) -> None:
        """Revoke one access token, or all of them."""
        with self._lock:
            if access_token is None:
                self._access.clear()
            else:
                self._access.pop(access_token, None)

    def validate(self, access_token: str) -> str | None:
        """The username an access token belongs to, if it is active."""
        with self._lock:
            self.introspections += 1
            grant = self._access.get(access_token)
            if grant is None or grant.expires_at < time.time():
                return None
            return grant.username

    def _issue(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            if self.fail_next_refresh:
                error, self.fail_next_refresh = self.fail_next_refresh, None
                return 400, {"error": error}
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return 401, {"error": "invalid_client"}
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            username = self._refresh.get(form.get("refresh_token", ""))
            if username is None:
                return 400, {"error": "invalid_grant"}
            token = "at-" + secrets.token_urlsafe(24)
            self._access[token] = _Grant(username, time.time() + self.lifetime_s)
            self.refreshes += 1
            return 200, {"access_token": token, "token_type": "Bearer",
                         "expires_in": int(self.lifetime_s)}

    def start(self) -> FakeOAuthProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if self.path == "/token":
                    status, body = provider._issue(form)
                elif self.path == "/introspect":
                    user = provider.validate(form.get("token", ""))
                    status, body = 200, ({"active": True, "username": user} if user
                                         else {"active": False})
                else:
                    status, body = 404, {"error": "not_found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
