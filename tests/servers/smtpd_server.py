"""Real SMTP servers for tests (aiosmtpd, run in a thread by its Controller).

:func:`smtp_server` starts one on a free 127.0.0.1 port: plain, STARTTLS (required) or implicit
TLS, optionally with AUTH, optionally answering RCPT or DATA with a fixed failure reply
(``451 4.3.0 ...`` / ``550 5.1.1 ...``) to exercise the retry and dead-letter paths.
:func:`self_signed` makes a certificate for 127.0.0.1 with the ``openssl`` CLI.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from base64 import b64decode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.oauth_fake import FakeOAuthProvider


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Handler:
    rcpt_reply: str | None = None
    data_reply: str | None = None
    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.content)))
        return "250 Message accepted for delivery"


@dataclass
class OAuthHandler(Handler):
    """Also accepts ``AUTH XOAUTH2``: the token is checked with the (fake) OAuth2 provider and
    must belong to the user named in the SASL string; a refused token gets a 334 JSON error
    challenge and then 535, as Gmail and Microsoft 365 answer."""

    oauth: FakeOAuthProvider | None = None
    logins: list[str] = field(default_factory=list)
    refused: int = 0

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        assert self.oauth is not None
        try:
            fields = b64decode(args[1]).decode().split("\x01")
            user = fields[0].removeprefix("user=")
            token = next(f for f in fields if f.startswith("auth=Bearer ")).split(" ", 1)[1]
        except (IndexError, ValueError, StopIteration):
            return AuthResult(success=False, handled=False)
        if self.oauth.validate(token) != user:
            self.refused += 1
            # like Gmail / Microsoft 365: a 334 challenge with a JSON error, then 535
            await server.challenge_auth(json.dumps({"status": "401", "schemes": "Bearer"}))
            return AuthResult(success=False, handled=False)
        self.logins.append(user)
        return AuthResult(success=True, auth_data=user)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: Handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(cert, key) for CN/SAN 127.0.0.1, valid one day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@contextmanager
def smtp_server(
    *, handler: Handler | None = None, tls: str = "none", cert: tuple[Path, Path] | None = None,
    credentials: tuple[str, str] | None = None, oauth: FakeOAuthProvider | None = None,
) -> Iterator[SmtpServer]:
    """Run an aiosmtpd server; ``tls`` is ``none``, ``starttls`` or ``tls`` (implicit).

    ``oauth``: require AUTH XOAUTH2 with tokens of that (fake) provider (see OAuthHandler).
    """
    handler = handler or (OAuthHandler(oauth=oauth) if oauth is not None else Handler())
    port = _free_port()
    kwargs: dict[str, Any] = {}
    if tls != "none":
        assert cert is not None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        if tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
    if oauth is not None:
        def no_passwords(server: Any, session: Any, envelope: Any, mechanism: str,
                         auth_data: Any) -> AuthResult:
            return AuthResult(success=False, handled=False)

        kwargs.update(authenticator=no_passwords, auth_required=True,
                      auth_require_tls=tls != "none")
    elif credentials is not None:
        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(), auth_data.password.decode()) == credentials
            return AuthResult(success=ok, handled=False)  # False: the server answers 535

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=tls != "none")
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()
