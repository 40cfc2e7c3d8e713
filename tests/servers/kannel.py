"""A throwaway Kannel (bearerbox + smsbox) and a fake SMSC playing the phone network, for tests.

Kannel's ``smsc = fake`` connection *listens* on a TCP port; a fake-SMSC client connects to it
and speaks a line protocol (Kannel's ``gw/smsc/smsc_fake.c``): each line is
``<sender> <receiver> <type> <payload>`` where type is ``text`` (printable ASCII as is),
``data`` (URL-encoded bytes) or ``udh`` (``<url-encoded UDH> <url-encoded data>``). Messages
Kannel sends to phones come back down the same socket in the same format. :class:`FakeSmsc` is
that client, in asyncio, so a test can both text the gateway and read what it sent.

Everything binds to 127.0.0.1 on free ports and lives in a temporary directory; processes are
stopped by their own pids. A missing binary raises with the install hint (the test fails,
never skips).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

INSTALL_HINT = "Kannel is not installed: run `bash tests/servers/kannel.sh` (Debian kannel)."
SMSC_ID = "FAKE"


def find_binary(name: str) -> str:
    """Locate bearerbox/smsbox (they live in /usr/sbin, often not on PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise RuntimeError(f"{name} not found. {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None) -> None:
    """Wait until something accepts TCP on 127.0.0.1:port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class SmscLine:
    """One message as the fake SMSC saw it (Kannel -> phone)."""

    sender: str
    receiver: str
    kind: str  # text | data | udh | ucs-2
    data: bytes
    udh: bytes = b""

    @property
    def text(self) -> str:
        codec = "utf-16-be" if self.kind == "ucs-2" else "utf-8"
        return self.data.decode(codec, "replace")


def _unquote(value: str) -> bytes:
    """Kannel's octstr_url_encode writes a space as '+' (and a real '+' as %2B)."""
    return unquote_to_bytes(value.replace("+", " "))


def parse_smsc_line(line: str) -> SmscLine:
    sender, receiver, kind, rest = ([*line.split(" ", 3), "", "", "", ""])[:4]
    if kind == "text":
        return SmscLine(sender, receiver, kind, rest.encode("latin-1", "replace"))
    if kind == "udh":
        udh, _, data = rest.partition(" ")
        return SmscLine(sender, receiver, kind, _unquote(data), _unquote(udh))
    return SmscLine(sender, receiver, kind, _unquote(rest))


class FakeSmsc:
    """The phone network side: a client of bearerbox's fake SMSC listener."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: asyncio.Queue[SmscLine] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self._task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            await self.received.put(parse_smsc_line(line.decode("latin-1").rstrip("\r\n")))

    async def _write(self, line: str) -> None:
        assert self._writer is not None, "connect() first"
        self._writer.write(line.encode("latin-1") + b"\n")
        await self._writer.drain()

    async def send_text(self, sender: str, receiver: str, text: str) -> None:
        """A phone texts ``receiver``: printable ASCII goes as ``text``, anything else ``data``."""
        if text.isascii() and text.isprintable():
            await self._write(f"{sender} {receiver} text {text}")
        else:
            await self._write(f"{sender} {receiver} data {quote_from_bytes(text.encode())}")

    async def send_udh(self, sender: str, receiver: str, udh: bytes, data: bytes) -> None:
        """One part of a concatenated message (Kannel marks it 8-bit)."""
        await self._write(
            f"{sender} {receiver} udh {quote_from_bytes(udh, safe='')} "
            f"{quote_from_bytes(data, safe='')}"
        )

    async def next_message(self, timeout: float = 10.0) -> SmscLine:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


@dataclass
class KannelPorts:
    admin: int
    smsbox: int
    sendsms: int
    smsc: int

    @classmethod
    def pick(cls) -> KannelPorts:
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_port())
        admin, smsbox, sendsms, smsc = sorted(ports)
        return cls(admin, smsbox, sendsms, smsc)


class KannelTestbed:
    """bearerbox + smsbox with one fake SMSC, one sendsms user and a catch-all get-url."""

    username = "hub"
    password = "hub-secret"

    def __init__(
        self,
        workdir: Path,
        get_url: str,
        *,
        combine_concatenated: bool = True,
        http_retries: int = 3,
    ) -> None:
        self.workdir = workdir
        self.get_url = get_url
        self.combine_concatenated = combine_concatenated
        self.http_retries = http_retries
        self.ports = KannelPorts.pick()
        self.config_path = workdir / "kannel.conf"
        self._procs: list[subprocess.Popen[bytes]] = []
        self.smsc = FakeSmsc(self.ports.smsc)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sendsms}/cgi-bin/sendsms"

    def config_text(self) -> str:
        p, d = self.ports, self.workdir
        combine = "true" if self.combine_concatenated else "false"
        get_url = self.get_url.replace('"', "%22")
        return f"""group = core
admin-port = {p.admin}
admin-interface = 127.0.0.1
admin-password = admin-secret
smsbox-port = {p.smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{d}/bearerbox.log"
log-level = 0
dlr-storage = internal
sms-combine-concatenated-mo = {combine}

group = smsc
smsc = fake
smsc-id = {SMSC_ID}
port = {p.smsc}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {p.sendsms}
sendsms-interface = 127.0.0.1
log-file = "{d}/smsbox.log"
log-level = 0
http-request-retry = {self.http_retries}
http-queue-delay = 1

group = sendsms-user
username = {self.username}
password = {self.password}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
get-url = "{get_url}"
max-messages = 0
"""

    def _spawn(self, binary: str, name: str) -> subprocess.Popen[bytes]:
        out = (self.workdir / f"{name}.stdout").open("wb")
        proc = subprocess.Popen(
            [binary, "-v", "1", str(self.config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        out.close()
        self._procs.append(proc)
        return proc

    async def start(self, timeout: float = 15.0) -> None:
        bearerbox, smsbox = find_binary("bearerbox"), find_binary("smsbox")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        bb = self._spawn(bearerbox, "bearerbox")
        await wait_port(self.ports.smsbox, timeout, bb)
        await self.smsc.connect(timeout)
        sb = self._spawn(smsbox, "smsbox")
        await wait_port(self.ports.sendsms, timeout, sb)

    def logs(self) -> str:
        """Both boxes' logs, for failure messages."""
        parts = []
        for name in ("bearerbox.log", "smsbox.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    async def stop(self) -> None:
        await self.smsc.close()
        for proc in reversed(self._procs):  # smsbox first, then bearerbox
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 5.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait, 5.0)
        self._procs.clear()
