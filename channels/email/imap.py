"""A small typed layer over aioimaplib: the handful of IMAP commands the receive loop needs.

aioimaplib answers with ``Response(result, lines)`` and untyped byte lines; this module turns
those into ints, UID lists and ``(uid, raw bytes)`` pairs, and every failure into
:class:`TransientChannelError` (the loop reconnects with backoff) except a refused login, which
is raised as :class:`PermanentChannelError` with code ``imap_auth`` (the loop still retries,
slowly, because a password can be fixed without a restart). ``UID FETCH`` answers (the bulk of
a drain) are read by :mod:`channels.email.imap_fetch`, not by aioimaplib.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Iterable
from typing import Any

import aioimaplib

from channels.base import ChannelError, PermanentChannelError, TransientChannelError
from channels.email.config import ImapConfig
from channels.email.imap_fetch import Answer, FastFetch, FetchFailedError
from channels.email.imap_wire import (
    AuthMechanismError,
    StartTlsRefusedError,
    authenticate_xoauth2,
    bound_recursion,
    linear_fetch_completion,
    starttls,
    tls_context,
)
from channels.email.oauth import TokenSource, token_source

log = logging.getLogger(__name__)

_FETCH_RE = re.compile(rb"^\d+ FETCH \(")
_UID_RE = re.compile(rb"UID (\d+)")
_FETCH_UID_RE = re.compile(rb"[( ]UID (\d+)")
_UIDVALIDITY_RE = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")
_UIDNEXT_RE = re.compile(rb"\[UIDNEXT (\d+)\]")


def check_security(cfg: ImapConfig) -> None:
    """Refuse to send credentials over an unencrypted connection unless explicitly allowed."""
    if cfg.security == "none" and not cfg.allow_plaintext_auth:
        raise PermanentChannelError(
            f"IMAP {cfg.host}:{cfg.port}: security 'none' would send the credentials "
            "unencrypted; use 'tls' or 'starttls', or set allow_plaintext_auth on a trusted "
            "network", code="imap_plaintext_refused")


def uid_set(uids: Iterable[int]) -> str:
    """Compress UIDs into an IMAP sequence set: ``1:3,7,9:10``."""
    ordered = sorted(set(uids))
    ranges: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(ranges)


def parse_fetch(lines: list[Any]) -> list[tuple[int, bytes]]:
    """``(uid, literal)`` for each FETCH carrying a body; unsolicited flag updates are skipped."""
    out: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None

    def flush() -> None:
        if uid is not None and body is not None:
            out.append((uid, body))

    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if not isinstance(line, bytes):
            continue
        if _FETCH_RE.match(line):
            flush()
            uid, body = None, None
        found = _UID_RE.search(line)
        if found and uid is None:
            uid = int(found.group(1))
    flush()
    return out


async def xoauth2_login(client: aioimaplib.IMAP4, user: str, source: TokenSource,
                        limit_s: float) -> None:
    """Log in with an OAuth2 access token; a refused token is refreshed and tried once more."""
    for attempt in (1, 2):
        token = await source.token()
        ok, detail = await authenticate_xoauth2(client, user, token, limit_s)
        if ok:
            return
        source.invalidate(token)
        log.warning("IMAP XOAUTH2 refused (%s), attempt %d", detail, attempt)
    raise PermanentChannelError("IMAP XOAUTH2 refused a freshly refreshed token",
                                code="imap_auth")


class ImapSession:
    """One logged-in connection with one selected mailbox."""

    def __init__(self, cfg: ImapConfig) -> None:
        self.cfg = cfg
        self.lost = asyncio.Event()
        self._client: aioimaplib.IMAP4 | None = None
        self._fast: FastFetch | None = None
        # One command at a time: aioimaplib lets two tasks that wait on the same pending FETCH
        # both go ahead and overwrite each other's slot (the reply then "unexpected tagged").
        self._lock = asyncio.Lock()

    @property
    def client(self) -> aioimaplib.IMAP4:
        if self._client is None:
            raise TransientChannelError("IMAP session is not connected", code="imap_closed")
        return self._client

    async def connect(self) -> None:
        """Connect, secure the connection as configured, log in; see :func:`check_security`."""
        cfg = self.cfg
        check_security(cfg)
        context = cfg.ssl_context or (tls_context(cfg.ca_file) if cfg.security != "none" else None)
        try:
            if cfg.security == "tls":
                self._client = aioimaplib.IMAP4_SSL(
                    host=cfg.host, port=cfg.port, timeout=cfg.timeout_s, ssl_context=context
                )
            else:
                self._client = aioimaplib.IMAP4(host=cfg.host, port=cfg.port, timeout=cfg.timeout_s)
            self._client.protocol.conn_lost_cb = self._on_lost
            bound_recursion(self._client.protocol)
            linear_fetch_completion(self._client.protocol)
            self._fast = FastFetch(self._client.protocol)
            await self._client.wait_hello_from_server()
            if cfg.security == "starttls":
                assert context is not None
                await starttls(self._client, context, cfg.host, cfg.timeout_s)
            await self._login(self._client)
        except ssl.SSLCertVerificationError as exc:
            self.abort()
            raise PermanentChannelError(
                f"IMAP server {cfg.host}:{cfg.port} certificate rejected: {exc.verify_message}",
                code="imap_tls_verify",
            ) from exc
        except AuthMechanismError as exc:
            self.abort()
            raise PermanentChannelError(f"IMAP {cfg.host}:{cfg.port}: {exc}",
                                        code="imap_auth_unsupported") from exc
        except StartTlsRefusedError as exc:
            self.abort()
            raise PermanentChannelError(
                f"IMAP server {cfg.host}:{cfg.port}: {exc}; not logging in without TLS",
                code="imap_starttls_unavailable",
            ) from exc
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            self.abort()
            reason = f"IMAP connect failed: {exc!r}"
            raise TransientChannelError(reason, code="imap_connect") from exc
        except ChannelError:
            self.abort()
            raise

    def _on_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        if self._fast is not None:
            self._fast.abort(exc or ConnectionResetError("IMAP connection lost"))

    async def _login(self, client: aioimaplib.IMAP4) -> None:
        cfg = self.cfg
        if cfg.oauth2 is not None:
            await xoauth2_login(client, cfg.username, token_source(cfg.oauth2), cfg.timeout_s)
            return
        response = await client.login(cfg.username, cfg.password)
        if response.result != "OK":
            raise PermanentChannelError("IMAP login refused", code="imap_auth")

    async def _ok(self, what: str, coro: Any) -> list[Any]:
        try:
            async with self._lock:
                response = await coro
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise TransientChannelError(f"IMAP {what} failed: {exc!r}", code="imap_io") from exc
        if response.result != "OK":
            detail = response.lines[-1][:200] if response.lines else b""
            raise TransientChannelError(f"IMAP {what}: {response.result} {detail!r}",
                                        code="imap_no")
        return list(response.lines)

    async def select(self, mailbox: str) -> tuple[int, int]:
        """Select ``mailbox``; returns (UIDVALIDITY, UIDNEXT)."""
        lines = await self._ok("SELECT", self.client.select(mailbox))
        joined = b"\n".join(x for x in lines if isinstance(x, bytes))
        validity = _UIDVALIDITY_RE.search(joined)
        uidnext = _UIDNEXT_RE.search(joined)
        if validity is None:
            raise TransientChannelError("SELECT answered without UIDVALIDITY", code="imap_no")
        return int(validity.group(1)), int(uidnext.group(1)) if uidnext else 0

    async def uid_search(self, *criteria: str) -> list[int]:
        lines = await self._ok("UID SEARCH", self.client.uid_search(*criteria, charset=None))
        uids: list[int] = []
        for line in lines[:-1]:
            if isinstance(line, bytes):
                uids.extend(int(tok) for tok in line.split() if tok.isdigit())
        return sorted(set(uids))

    async def _fetch(self, uids: list[int], items: str) -> list[Answer]:
        """One ``UID FETCH`` through :mod:`channels.email.imap_fetch` (not aioimaplib)."""
        if self._fast is None:
            raise TransientChannelError("IMAP session is not connected", code="imap_closed")
        try:
            async with self._lock:
                return await self._fast.fetch(uid_set(uids), items, self.cfg.timeout_s)
        except FetchFailedError as exc:
            raise TransientChannelError(f"IMAP UID FETCH: {exc}", code="imap_no") from exc
        except (OSError, TimeoutError) as exc:
            raise TransientChannelError(f"IMAP UID FETCH failed: {exc!r}", code="imap_io") from exc

    async def fetch(
        self, uids: list[int], *, headers_only: bool = False
    ) -> list[tuple[int, bytes]]:
        """``(uid, raw)`` per message; PEEK, so nothing is marked seen by reading."""
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        out: list[tuple[int, bytes]] = []
        for text, body in await self._fetch(uids, f"(UID {part})"):
            uid = _FETCH_UID_RE.search(text)
            if uid is not None and body is not None:
                out.append((int(uid.group(1)), body))
        return out

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE per UID, to batch by bytes and to spot mail too big to fetch whole."""
        out: dict[int, int] = {}
        for text, _ in await self._fetch(uids, "(UID RFC822.SIZE)"):
            uid, size = _FETCH_UID_RE.search(text), _SIZE_RE.search(text)
            if uid and size:
                out[int(uid.group(1))] = int(size.group(1))
        return out

    async def flag(self, uids: list[int], flags: str) -> None:
        if uids:
            await self._ok("UID STORE", self.client.uid("store", uid_set(uids),
                                                        f"+FLAGS.SILENT ({flags})"))

    async def move(self, uids: list[int], folder: str) -> None:
        """UID MOVE (RFC 6851), or COPY + \\Deleted + UID EXPUNGE where MOVE is missing."""
        if not uids:
            return
        if self.client.has_capability("MOVE"):
            await self._ok("UID MOVE", self.client.uid("move", uid_set(uids), folder))
            return
        await self._ok("UID COPY", self.client.uid("copy", uid_set(uids), folder))
        await self.flag(uids, "\\Deleted")
        await self._ok("UID EXPUNGE", self.client.uid("expunge", uid_set(uids)))

    async def ensure_folder(self, folder: str) -> None:
        try:
            async with self._lock:
                response = await self.client.create(folder)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise TransientChannelError(f"IMAP CREATE failed: {exc!r}", code="imap_io") from exc
        if response.result != "OK" and not any(
            b"ALREADYEXISTS" in x or b"exists" in x for x in response.lines if isinstance(x, bytes)
        ):
            raise TransientChannelError(f"cannot create folder {folder!r}", code="imap_no")

    async def append(self, raw: bytes, folder: str, flags: str = "\\Seen") -> None:
        await self.ensure_folder(folder)
        await self._ok("APPEND", self.client.append(raw, mailbox=folder, flags=flags))

    def supports_idle(self) -> bool:
        return bool(self.client.has_capability("IDLE"))

    async def wait_for_change(self, max_wait: float) -> bool:
        """IDLE until the server reports new mail, the connection drops, or ``max_wait``.

        Returns True when the server pushed something. Always leaves IDLE before returning.
        """
        client = self.client
        idle = await client.idle_start(timeout=max_wait + 5)
        lost = asyncio.ensure_future(self.lost.wait())
        pushed = False
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max_wait
            while not pushed:
                remaining = deadline - loop.time()
                if remaining <= 0 or self.lost.is_set():
                    break
                push = asyncio.ensure_future(client.wait_server_push(timeout=remaining))
                done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
                if push not in done:
                    push.cancel()
                    break
                try:
                    lines = push.result()
                except TimeoutError:
                    break
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                pushed = any(b"EXISTS" in x for x in lines if isinstance(x, bytes))
        finally:
            lost.cancel()
            if not self.lost.is_set() and client.has_pending_idle():
                client.idle_done()
                try:
                    await asyncio.wait_for(idle, self.cfg.timeout_s)
                except (TimeoutError, aioimaplib.AioImapException) as exc:
                    raise TransientChannelError("IDLE did not end", code="imap_io") from exc
            else:
                idle.cancel()
        if self.lost.is_set():
            raise TransientChannelError("IMAP connection lost", code="imap_lost")
        return pushed

    async def noop(self) -> None:
        await self._ok("NOOP", self.client.noop())

    async def close(self) -> None:
        """Log out politely (bounded), then drop the connection."""
        if self._client is not None and not self.lost.is_set():
            try:
                await asyncio.wait_for(self._client.logout(), 2)
            except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                log.debug("IMAP logout failed: %r", exc)
        self.abort()

    def abort(self) -> None:
        """Drop the connection now (also safe while a command is pending)."""
        client, self._client = self._client, None
        if self._fast is not None:
            self._fast.abort(ConnectionResetError("IMAP session closed"))
            self._fast = None
        transport = getattr(getattr(client, "protocol", None), "transport", None)
        if transport is not None:
            transport.close()
