"""``UID FETCH`` answers read straight off the socket, beside aioimaplib rather than through it.

Why: in a 10,000-message drain into the hub, aioimaplib's reading of the FETCH answers was
the adapter's largest cost on the event loop after the hub itself: it formats every received
chunk for a debug log line (``'%s' % data`` on each read, even with logging off), parses one
line per recursive call, copies each literal piece by piece and runs a completion check per
line. The FETCH answers are all the bulk a drain reads, so only they take this path; every other
command (SELECT, SEARCH, STORE, IDLE, ...) still goes through aioimaplib.

How: the session sends ``<tag> UID FETCH ...`` itself and points the connection's
``data_received`` at a :class:`FetchReader` until the reader has seen ``<tag> OK/NO/BAD``;
bytes after that line go back to aioimaplib. The session's lock guarantees that no aioimaplib
command is in flight meanwhile, so the two never share a read. The reader scans with
``bytes.find`` and slices each literal out once, and keeps per answer only ``(text, literal)``:
the answer's lines joined (to find ``UID``/``RFC822.SIZE``) and its ``BODY[...]`` literal.
Untagged lines that are not FETCH answers (EXISTS, EXPUNGE, RECENT...) are skipped, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_FETCH_START = re.compile(rb"\* \d+ FETCH \(")
_BODY_LITERAL = re.compile(rb"BODY\[[^\]]*\](?:<\d+>)? \{\d+\+?\}$")

Answer = tuple[bytes, bytes | None]  # the answer's text (literals left out), its BODY literal


class FetchFailedError(Exception):
    """The server answered the FETCH with NO or BAD (``status`` and ``detail`` say which)."""

    def __init__(self, status: str, detail: bytes) -> None:
        super().__init__(f"{status} {detail[:200]!r}")
        self.status = status


class FetchReader:
    """Parses one FETCH command's answer; ``done`` resolves with the FETCH answers in order."""

    def __init__(self, tag: str, loop: asyncio.AbstractEventLoop) -> None:
        self._tag = tag.encode("ascii") + b" "
        self._buf = bytearray()
        self._need = 0  # bytes of the literal being read
        self._lines: list[bytes] = []  # the current answer's lines so far
        self._body: bytes | None = None
        self._body_next = False  # the literal being read is the BODY[...]
        self.answers: list[Answer] = []
        self.done: asyncio.Future[list[Answer]] = loop.create_future()
        # nobody may be waiting any more (a cancelled FETCH): never warn "never retrieved"
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.ended = asyncio.Event()  # the tagged line was read, or the reader failed
        self.last_data = loop.time()
        self._loop = loop

    def feed(self, data: bytes) -> bytes | None:
        """Consume ``data``; returns the bytes after the tagged status line once it is read
        (often ``b""``), None while the answer goes on."""
        self.last_data = self._loop.time()
        buf = self._buf
        buf += data
        pos = 0
        size = len(buf)
        while True:
            if self._need:
                if size - pos < self._need:
                    break
                end = pos + self._need
                if self._body_next:
                    self._body = bytes(buf[pos:end])
                pos, self._need, self._body_next = end, 0, False
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            line = bytes(buf[pos:end])
            pos = end + 2
            literal = _LITERAL.search(line) if line.endswith(b"}") else None
            self._lines.append(line)
            if literal is not None:
                self._need = int(literal.group(1))
                self._body_next = bool(_BODY_LITERAL.search(line))
                if not self._need:  # an empty literal: the answer goes on with the next line
                    if self._body_next:
                        self._body = b""
                    self._body_next = False
                continue
            if self._answer_done():
                rest = bytes(buf[pos:])
                buf.clear()
                return rest
        del buf[:pos]
        return None

    def _answer_done(self) -> bool:
        """One answer is complete; True when it was our tagged status line."""
        lines, body = self._lines, self._body
        self._lines, self._body = [], None
        first = lines[0]
        if first.startswith(self._tag):
            self.ended.set()
            status, _, detail = first[len(self._tag) :].partition(b" ")
            if not self.done.done():
                if status == b"OK":
                    self.done.set_result(self.answers)
                else:
                    self.done.set_exception(FetchFailedError(status.decode("ascii", "replace"),
                                                             detail))
            return True
        if _FETCH_START.match(first):
            self.answers.append((b" ".join(lines) if len(lines) > 1 else first, body))
        return False

    def fail(self, exc: BaseException) -> None:
        self.ended.set()
        if not self.done.done():
            self.done.set_exception(exc)


class FastFetch:
    """Owns the routing of one connection's bytes: to the active reader, else to aioimaplib."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._fallback: Callable[[bytes], None] = protocol.data_received
        self._reader: FetchReader | None = None
        protocol.data_received = self._route

    def _route(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:
            self._fallback(data)
            return
        rest = reader.feed(data)
        if rest is not None:
            self._reader = None
            if rest:
                self._fallback(rest)

    def abort(self, exc: BaseException) -> None:
        """The connection is gone: fail the FETCH in flight."""
        if self._reader is not None:
            self._reader.fail(exc)
            self._reader = None

    async def fetch(self, uid_set: str, items: str, timeout_s: float | None) -> list[Answer]:
        """Send ``UID FETCH <uid_set> <items>`` and return its answers.

        ``timeout_s`` bounds the silence between two reads, not the whole answer (a big
        batch on a slow link may take long, a dead one is noticed). On timeout or
        cancellation the reader stays installed and swallows the rest of the answer, so the
        connection stays in step for whoever uses it next.
        """
        protocol = self._protocol
        if self._reader is not None:  # a cancelled FETCH's answer is still arriving
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader.ended.wait(), timeout_s)
            if self._reader is not None:  # its tagged line never came: out of step
                raise TimeoutError("the previous FETCH answer never ended")
        if protocol.transport is None or protocol.transport.is_closing():
            raise ConnectionResetError("IMAP connection closed")
        loop = asyncio.get_running_loop()
        tag = protocol.new_tag()
        reader = FetchReader(tag, loop)
        self._reader = reader
        protocol.transport.write(f"{tag} UID FETCH {uid_set} {items}\r\n".encode("ascii"))
        if timeout_s is None:
            return await reader.done
        timer: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal timer
            silent = loop.time() - reader.last_data
            if silent >= timeout_s:
                reader.fail(TimeoutError(f"no FETCH data for {timeout_s:.0f}s"))
            else:
                timer = loop.call_later(timeout_s - silent, check)

        timer = loop.call_later(timeout_s, check)
        try:
            return await reader.done
        finally:
            timer.cancel()
