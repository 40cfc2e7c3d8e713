"""A throwaway Dovecot IMAP server for tests: own config, own maildirs, a free port on 127.0.0.1.

The listener offers STARTTLS with a certificate for IP 127.0.0.1 issued by a test CA made at
start (``tls.ca`` to trust it; ``tls.other_ca`` is an unrelated CA, and the certificate does not
name ``localhost``, for the verification-failure tests), and accepts, besides passwords,
XOAUTH2 / OAUTHBEARER through Dovecot's ``oauth2`` passdb, which validates tokens by RFC 7662
introspection at ``oauth`` (a local FAKE of the remote provider, tests/servers/oauth_fake.py).

Use :func:`start_dovecot` (returns a running :class:`Dovecot`; call ``stop()``), or the pytest
fixture :func:`dovecot` (session-scoped: one server, each test makes its own user with
:meth:`Dovecot.add_user`, so mailboxes never leak between tests). Deliver mail with
:meth:`Dovecot.append` (IMAP APPEND through the stdlib client, i.e. through the real server).

If the ``dovecot`` binary is missing the fixture FAILS (never skips): run tests/servers/dovecot.sh.
"""

from __future__ import annotations

import imaplib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.oauth_fake import FakeOAuthProvider

NOBODY_UID = 65534
USER_POOL = 200
PASSWORD = "secret"

_CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
instance_name = test-imap-{port}
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
ssl_cert = <{d}/tls/server.crt
ssl_key = <{d}/tls/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
log_path = {d}/dovecot.log
mail_location = maildir:{d}/mail/%u
first_valid_uid = 1
mail_max_userip_connections = 100
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {d}/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  imap_idle_notify_interval = 1 secs
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_binary() -> str:
    for candidate in (shutil.which("dovecot"), "/usr/sbin/dovecot"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("dovecot is not installed: run `bash tests/servers/dovecot.sh`")


_OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


@dataclass(frozen=True)
class TestTls:
    """PEM files of the test PKI (see :func:`make_tls`)."""

    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_tls(directory: Path) -> TestTls:
    """A test CA, an unrelated second CA, and a server certificate for IP 127.0.0.1 (only:
    ``localhost`` is deliberately not named) issued by the first, EC P-256, valid two days."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "2", "-subj", f"/CN=contacthub test {name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.crt"))
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=127.0.0.1", "-keyout", str(directory / "server.key"),
             "-out", str(directory / "server.csr"))
    _openssl("x509", "-req", "-in", str(directory / "server.csr"), "-CA",
             str(directory / "ca.crt"), "-CAkey", str(directory / "ca.key"), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(directory / "server.crt"))
    for path in directory.iterdir():
        path.chmod(0o644)
    return TestTls(directory / "ca.crt", directory / "other-ca.crt", directory / "server.crt",
                   directory / "server.key")


@dataclass
class Dovecot:
    """A running instance. ``users`` maps login → password (a pool; see :meth:`add_user`)."""

    host: str
    port: int
    base: Path
    process: subprocess.Popen[bytes]
    tls: TestTls
    oauth: FakeOAuthProvider
    users: dict[str, str] = field(default_factory=dict)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def add_user(self) -> str:
        """Hand out a fresh user (own empty maildir) and return its login.

        Users are pre-created at start: Dovecot re-reads passwd-file only when its (mtime, size)
        changed and not more than once a second, so adding users on the fly races logins.
        """
        index = next(self._seq)
        if index >= USER_POOL:
            raise RuntimeError(f"more than {USER_POOL} users requested from one Dovecot")
        return f"user{index}@example.com"

    def client(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(user, self.users[user])
        return conn

    def append(self, user: str, messages: list[bytes], folder: str = "INBOX") -> None:
        """Deliver messages through the server (IMAP APPEND), unseen."""
        conn = self.client(user)
        try:
            for raw in messages:
                typ, _ = conn.append(folder, "", None, raw)
                assert typ == "OK"
        finally:
            conn.logout()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.oauth.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_dovecot(*, tls: bool = True) -> Dovecot:
    """Start a fresh instance and wait until it accepts IMAP connections.

    ``tls=False``: no STARTTLS on offer (a server the client must refuse to log in to)."""
    binary = dovecot_binary()
    base = Path(tempfile.mkdtemp(prefix="ch-dovecot-"))
    base.chmod(0o755)  # the static userdb's uid must be able to enter it
    for sub in ("run", "state", "mail"):
        (base / sub).mkdir()
    os.chown(base / "mail", NOBODY_UID, NOBODY_UID)
    users = {f"user{i}@example.com": PASSWORD for i in range(USER_POOL)}
    (base / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
    port = free_port()
    pki = make_tls(base / "tls")
    oauth = FakeOAuthProvider().start()
    (base / "oauth2.conf.ext").write_text(_OAUTH2_CONF.format(url=oauth.introspection_url))
    conf = base / "dovecot.conf"
    conf.write_text(_CONFIG.format(d=base, port=port, uid=NOBODY_UID,
                                   ssl="yes" if tls else "no"))
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-F"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = Dovecot("127.0.0.1", port, base, proc, pki, oauth, users)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            server.stop()
            raise RuntimeError(f"dovecot exited at start: {err}{server.log()}")
        try:
            with socket.create_connection((server.host, port), timeout=0.5) as s:
                if s.recv(100).startswith(b"* OK"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("dovecot did not accept connections within 15 s")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A Dovecot instance shared by the session; make a user per test with ``add_user()``."""
    try:
        server = start_dovecot()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


def fill_maildir(server: Dovecot, user: str, messages: list[bytes]) -> None:
    """Drop many messages straight into the user's maildir ``new/`` (far faster than APPEND
    for the 10,000-message drain test); Dovecot indexes them at the next SELECT."""
    root = server.base / "mail" / user
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for i, raw in enumerate(messages):
        path = root / "new" / f"{stamp}.M{i}P{os.getpid()}.testhost"
        path.write_bytes(raw)
        os.chown(path, NOBODY_UID, NOBODY_UID)
    for dirpath, _dirs, _files in os.walk(root):
        os.chown(dirpath, NOBODY_UID, NOBODY_UID)


def kick(server: Dovecot, user: str) -> None:
    """Disconnect every session of ``user`` from the server side (``doveadm kick``)."""
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    subprocess.run([doveadm, "-c", str(server.base / "dovecot.conf"), "kick", user],
                   check=True, capture_output=True, timeout=10)
