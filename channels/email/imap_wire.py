"""Adjustments to one aioimaplib connection's protocol object, made where the library falls short.

- :func:`bound_recursion`: aioimaplib parses one read recursively, a stack frame per line; feed
  it bounded slices so a busy loop's 256 KB read cannot overflow the recursion limit.
- :func:`starttls`: aioimaplib speaks implicit TLS only; this upgrades a plain connection.
- :func:`authenticate_xoauth2`: aioimaplib's XOAUTH2 hangs when the token is refused.
- :func:`linear_fetch_completion`: after every line of a FETCH answer, aioimaplib's
  ``FetchCommand.wait_data`` rescans *all* lines received so far for the last ``n FETCH (``
  start, which makes a 200-message fetch quadratic (profiled: ~70% of the adapter's IMAP time
  with 10,000 waiting messages). The replacement remembers how far it scanned; the answer it
  gives is the same. Each command's inactivity timer is also made cheap (see
  :func:`_lazy_inactivity_timer`).

Both patch one connection's objects, never the library's classes, so other users of aioimaplib
in the process (the benchmark's bare baseline) are unaffected.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
from typing import Any

import aioimaplib

READ_SLICE = 8192
_FETCH_START = re.compile(rb"[0-9]+ FETCH \(")


def bound_recursion(protocol: Any) -> None:
    """Feed aioimaplib's parser at most ``READ_SLICE`` bytes at a time.

    Slicing is what TCP may do anyway, and the parser already carries partial lines and
    literals across reads.
    """
    original = protocol.data_received

    def sliced(data: bytes) -> None:
        for start in range(0, len(data), READ_SLICE):
            original(data[start : start + READ_SLICE])

    protocol.data_received = sliced


def _linear_wait_data(command: Any) -> None:
    scan = {"done": 0, "start": 0}

    def wait_data() -> bool:
        lines = command.response.lines
        for index in range(scan["done"], len(lines)):
            line = lines[index]
            if isinstance(line, bytes) and _FETCH_START.match(line):
                scan["start"] = index
        scan["done"] = len(lines)
        tail = b"".join(x for x in lines[scan["start"] :] if isinstance(x, bytes))
        return tail.count(b"(") != tail.count(b")")

    command.wait_data = wait_data


def _lazy_inactivity_timer(command: Any) -> None:
    """The same inactivity timeout, without re-arming a loop timer for every response line.

    aioimaplib cancels and re-creates a ``call_later`` handle on each line and literal it
    receives (profiled: ~half of its parsing time in a 10,000-message drain, the cancelled
    handles piling up in the loop's heap). Here each line only records the time; the one timer
    re-arms itself for the remainder when it fires early, and times out when the command has
    really been silent for ``timeout`` seconds.
    """
    limit = command._timeout
    if limit is None:
        return
    loop = command._loop
    last = [loop.time()]

    def fire() -> None:
        silent = loop.time() - last[0]
        if silent >= limit:
            command._timeout_callback()
        else:
            command._timer = loop.call_later(limit - silent, fire)

    def touch() -> None:
        last[0] = loop.time()

    command._timer.cancel()
    command._timer = loop.call_later(limit, fire)
    command._reset_timer = touch


def linear_fetch_completion(protocol: Any) -> None:
    """Give every FETCH command sent on ``protocol`` an incremental ``wait_data`` and every
    command with a timeout a cheap inactivity timer."""
    original = protocol.execute

    async def execute(command: Any, scrub: str | None = None) -> Any:
        if isinstance(command, aioimaplib.FetchCommand):
            _linear_wait_data(command)
        _lazy_inactivity_timer(command)
        return await original(command, scrub=scrub)

    protocol.execute = execute


class StartTlsRefusedError(Exception):
    """The server does not offer STARTTLS, or answered the command with NO/BAD."""


async def starttls(client: aioimaplib.IMAP4, context: ssl.SSLContext, server_hostname: str,
                   limit_s: float) -> None:
    """Upgrade a fresh (not logged in) connection to TLS, RFC 3501 §6.2.1 / RFC 9051.

    aioimaplib has no STARTTLS: ask CAPABILITY, send STARTTLS, hand the socket to asyncio's
    ``start_tls`` with the same protocol object, then ask CAPABILITY again, because what the
    server said before the handshake must not be trusted (a man in the middle could have
    removed STARTTLS or added mechanisms). Certificate and host name are verified by
    ``context``; a failure raises ``ssl.SSLCertVerificationError``.
    """
    protocol = client.protocol
    await asyncio.wait_for(protocol.capability(), limit_s)
    if "STARTTLS" not in protocol.capabilities:
        raise StartTlsRefusedError("the server does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), limit_s)
    if response.result != "OK":
        raise StartTlsRefusedError(f"STARTTLS answered {response.result}")
    loop = asyncio.get_running_loop()
    transport = await loop.start_tls(protocol.transport, protocol, context,
                                     server_hostname=server_hostname,
                                     ssl_handshake_timeout=limit_s)
    if transport is None:  # the connection closed during the handshake
        raise ConnectionResetError("connection closed during the TLS handshake")
    protocol.transport = transport
    await asyncio.wait_for(protocol.capability(), limit_s)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verifying client context: system roots, or only ``ca_file`` when given."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)


async def authenticate_xoauth2(client: aioimaplib.IMAP4, user: str, token: str,
                               limit_s: float) -> tuple[bool, str]:
    """``AUTHENTICATE XOAUTH2`` with the initial response (SASL-IR); returns (ok, detail).

    On a refused token the server sends a ``+`` challenge carrying a JSON error and waits for
    an empty response before its tagged NO; aioimaplib would wait for ever, so the challenge is
    answered here. ``detail`` is the server's status text or the JSON's ``status`` (never the
    token).
    """
    protocol = client.protocol
    caps = protocol.capabilities
    if "AUTH=XOAUTH2" not in caps or "SASL-IR" not in caps:
        raise AuthMechanismError("the IMAP server does not offer AUTH=XOAUTH2 with SASL-IR")
    sasl = base64.b64encode(f"user={user}\1auth=Bearer {token}\1\1".encode()).decode("ascii")
    command = aioimaplib.Command("AUTHENTICATE", protocol.new_tag(), "XOAUTH2", sasl,
                                 loop=protocol.loop)
    challenge: list[bytes] = []
    original = command.append_to_resp

    def append_to_resp(line: bytes, result: str = "Pending") -> None:
        if isinstance(line, bytes) and line.startswith(b"+") and not challenge:
            challenge.append(line[1:].strip())
            protocol.transport.write(b"\r\n")  # end the exchange: the server answers NO
            return
        original(line, result)

    command.append_to_resp = append_to_resp
    response = await asyncio.wait_for(protocol.execute(command, scrub=sasl), limit_s)
    if response.result == "OK":
        protocol.state = aioimaplib.AUTH
        await asyncio.wait_for(protocol.capability(), limit_s)  # the post-login set
        return True, ""
    return False, _challenge_status(challenge) or _text(response.lines)


class AuthMechanismError(Exception):
    """The server lacks the authentication mechanism the configuration asks for."""


def _challenge_status(challenge: list[bytes]) -> str:
    if not challenge:
        return ""
    try:
        detail = json.loads(base64.b64decode(challenge[0]))
    except (ValueError, TypeError):
        return "invalid challenge"
    status = detail.get("status") if isinstance(detail, dict) else None
    return f"status {str(status)[:20]}" if status else "refused"


def _text(lines: list[Any]) -> str:
    last = next((x for x in reversed(lines) if isinstance(x, bytes)), b"")
    return last.decode("utf-8", "replace")[:200]
