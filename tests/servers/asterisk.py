"""A throwaway Asterisk 22 for tests, run from the chroot that ``tests/servers/asterisk.sh`` builds.

Each testbed is one Asterisk process with its own config, spool, log, run and db directories under
the chroot's ``/tmp`` (``asterisk -C`` points at them), so the cached chroot's sample configs are
never read and nothing leaks between runs. Ports (ARI over HTTP, SIP over UDP, the sipp peers, RTP)
are free ports picked at start. ``/proc`` and ``/dev`` are mounted into the chroot while it runs; a
file lock on the chroot serializes testbeds so one never unmounts under another.

The SIP side: a ``caller`` endpoint (the customer, sipp as UAC) and agent endpoints
(``agent1``, ``agent2``: sipp as UAS), all on 127.0.0.1 and told apart by ``identify`` on their
source port, so the caller can present any E.164 number in its From header. Calls from the caller go
to the ``inbound`` context, which hands them to the Stasis app.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CACHE_DIR = Path(os.environ.get("CONTACTHUB_CACHE", "/var/cache/contacthub"))
CURRENT_LINK = CACHE_DIR / "asterisk-current"
SETUP_HINT = "run `bash tests/servers/asterisk.sh` (as root) to build the Asterisk chroot"
AGENTS = ("agent1", "agent2")

# Modules that need hardware, other daemons or the network, or that open ports we do not want.
NOLOAD = (
    "chan_console", "chan_iax2", "chan_unistim", "chan_motif", "chan_websocket", "chan_audiosocket",
    "res_xmpp", "pbx_dundi", "pbx_lua", "pbx_ael", "pbx_realtime", "res_snmp", "res_hep",
    "res_hep_pjsip", "res_hep_rtcp", "cdr_radius", "cel_radius", "res_config_ldap",
    "res_config_odbc", "res_config_pgsql", "res_config_curl", "res_config_sqlite3",
    "res_phoneprov", "res_pjsip_phoneprov_provider", "app_jack", "res_calendar",
    "res_calendar_caldav", "res_calendar_ews", "res_calendar_exchange", "res_calendar_icalendar",
    "res_stun_monitor", "res_smdi", "res_resolver_unbound", "res_prometheus", "res_statsd",
    "res_timing_pthread", "app_voicemail_odbc", "cdr_pgsql", "cel_pgsql", "cdr_tds", "cel_tds",
    "cdr_odbc", "cel_odbc", "cdr_adaptive_odbc", "res_odbc", "res_odbc_transaction", "func_odbc",
    "res_fax_spandsp", "res_pjsip_stir_shaken", "res_stir_shaken", "res_aeap", "res_speech_aeap",
    "res_pjsip_transport_websocket", "app_festival", "res_pjsip_notify", "res_parking",
    "app_agent_pool", "app_confbridge", "app_page", "cel_manager", "cdr_csv", "cdr_manager",
    "cel_sqlite3_custom", "cel_custom", "cdr_custom", "cdr_sqlite3_custom", "app_alarmreceiver",
    "app_amd", "app_followme",
)


class AsteriskMissing(RuntimeError):
    """The chroot or the host tools are not there: the test must fail with this message."""


def find_root() -> Path:
    """The chroot built by asterisk.sh, or a clear error saying how to build it."""
    env = os.environ.get("CONTACTHUB_ASTERISK_ROOT")
    root = Path(env) if env else CURRENT_LINK
    if not (root / "usr/sbin/asterisk").exists() or not (root / ".contacthub-complete").exists():
        raise AsteriskMissing(f"no Asterisk chroot at {root}: {SETUP_HINT}")
    return root.resolve()


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise AsteriskMissing(f"missing host tools {missing}: {SETUP_HINT}")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class AsteriskTestbed:
    """Everything a test needs to reach the running Asterisk and its SIP peers."""

    root: Path
    inst: str  # instance dir as seen inside the chroot
    http_port: int
    sip_port: int
    caller_port: int
    agent_ports: dict[str, int]
    app: str
    user: str = "contacthub"
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    peers: list[Sipp] = field(default_factory=list)  # stopped when the testbed stops

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/ari"

    @property
    def host_dir(self) -> Path:
        return self.root / self.inst.lstrip("/")

    @property
    def recording_dir(self) -> Path:
        """Where ARI's stored recordings land, as a host path."""
        return self.host_dir / "spool/recording"

    @property
    def log_file(self) -> Path:
        return self.host_dir / "log/full"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cli(self, command: str) -> str:
        """Run one Asterisk CLI command through the remote console (for test diagnostics)."""
        conf = f"{self.inst}/etc/asterisk.conf"
        out = subprocess.run(
            ["chroot", str(self.root), "asterisk", "-C", conf, "-rx", command],
            capture_output=True, text=True, timeout=10, check=False,
        )
        return out.stdout + out.stderr


def _configs(tb: AsteriskTestbed) -> dict[str, str]:
    inst = tb.inst
    agents = "".join(
        f"""
[{name}]
type=endpoint
context=agents
disallow=all
allow=ulaw
dtmf_mode=rfc4733
direct_media=no
rtp_symmetric=yes
aors={name}

[{name}]
type=aor
contact=sip:{name}@127.0.0.1:{port}

[{name}]
type=identify
endpoint={name}
match=127.0.0.1:{port}
"""
        for name, port in tb.agent_ports.items()
    )
    return {
        "asterisk.conf": f"""[directories]
astcachedir => {inst}/cache
astetcdir => {inst}/etc
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => {inst}/db
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {inst}/spool
astrundir => {inst}/run
astlogdir => {inst}/log
astsbindir => /usr/sbin
[options]
runuser = asterisk
rungroup = asterisk
""",
        "modules.conf": "[modules]\nautoload=yes\n"
        + "".join(f"noload => {m}.so\n" for m in NOLOAD),
        "logger.conf": "[general]\n[logfiles]\nfull => notice,warning,error,verbose(3)\n",
        "http.conf": f"[general]\nenabled=yes\nbindaddr=127.0.0.1\nbindport={tb.http_port}\n",
        "ari.conf": f"[general]\nenabled=yes\n\n[{tb.user}]\ntype=user\n"
        f"read_only=no\npassword={tb.password}\n",
        "rtp.conf": "[general]\nrtpstart=30000\nrtpend=39999\n",
        "musiconhold.conf": "[default]\nmode=files\ndirectory=moh\n",
        "queues.conf": "[general]\n",
        "pjsip.conf": f"""[global]
type=global
endpoint_identifier_order=ip,username

[transport-udp]
type=transport
protocol=udp
bind=127.0.0.1:{tb.sip_port}

[caller]
type=endpoint
context=inbound
disallow=all
allow=ulaw
dtmf_mode=rfc4733
direct_media=no
rtp_symmetric=yes
aors=caller

[caller]
type=aor
contact=sip:caller@127.0.0.1:{tb.caller_port}

[caller]
type=identify
endpoint=caller
match=127.0.0.1:{tb.caller_port}
{agents}""",
        "extensions.conf": f"""[general]
static=yes
writeprotect=yes

[inbound]
exten => _X.,1,NoOp(inbound call)
 same => n,Stasis({tb.app},inbound,${{EXTEN}})
 same => n,Hangup()

[agents]
exten => _X.,1,Hangup()
""",
    }


def _mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == target for line in fh)


@contextlib.contextmanager
def _chroot_mounts(root: Path) -> Iterator[None]:
    done: list[Path] = []
    try:
        for point, cmd in (
            (root / "proc", ["mount", "-t", "proc", "proc"]),
            (root / "dev", ["mount", "--bind", "/dev"]),
        ):
            if not _mounted(point):
                subprocess.run([*cmd, str(point)], check=True)
                done.append(point)
        yield
    finally:
        for point in reversed(done):
            subprocess.run(["umount", "-l", str(point)], check=False)


@contextlib.contextmanager
def _lock(root: Path, timeout: float = 300.0) -> Iterator[None]:
    with open(root / ".contacthub-lock", "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another test holds {root}/.contacthub-lock") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _owner(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "asterisk":
            return int(parts[2]), int(parts[3])
    raise AsteriskMissing(f"no asterisk user in {root}/etc/passwd: {SETUP_HINT}")


def _wait_ready(tb: AsteriskTestbed, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"asterisk exited with {proc.returncode}:\n{tb.log_tail()}")
        try:
            r = httpx.get(
                f"{tb.ari_url}/asterisk/info", auth=(tb.user, tb.password), timeout=1.0
            )
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"ARI did not answer in {timeout}s ({last}):\n{tb.log_tail()}")


@contextlib.contextmanager
def asterisk_testbed(
    app: str = "contacthub", start_timeout: float = 30.0
) -> Iterator[AsteriskTestbed]:
    """Start Asterisk in the chroot, yield once ARI answers, stop and unmount on exit."""
    root = find_root()
    require_tools("chroot", "mount", "sipp")
    if os.geteuid() != 0:
        raise AsteriskMissing("the Asterisk testbed needs root (chroot, mount)")
    tb = AsteriskTestbed(
        root=root,
        inst=f"/tmp/contacthub-{uuid.uuid4().hex[:8]}",
        http_port=free_port(),
        sip_port=free_port(socket.SOCK_DGRAM),
        caller_port=free_port(socket.SOCK_DGRAM),
        agent_ports={name: free_port(socket.SOCK_DGRAM) for name in AGENTS},
        app=app,
    )
    uid, gid = _owner(root)
    with _lock(root), _chroot_mounts(root):
        host = tb.host_dir
        for sub in ("etc", "db", "spool/recording", "run", "log", "cache"):
            (host / sub).mkdir(parents=True, exist_ok=True)
        for name, text in _configs(tb).items():
            (host / "etc" / name).write_text(text)
        for dirpath, _dirs, files in os.walk(host):
            os.chown(dirpath, uid, gid)
            for f in files:
                os.chown(Path(dirpath) / f, uid, gid)
        proc = subprocess.Popen(
            ["chroot", str(root), "asterisk", "-f", "-C", f"{tb.inst}/etc/asterisk.conf",
             "-U", "asterisk", "-G", "asterisk"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(tb, proc, start_timeout)
            yield tb
        finally:
            for peer in tb.peers:
                peer.stop()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            shutil.rmtree(host, ignore_errors=True)


# --- SIP peers (sipp) and test audio ---------------------------------------------------------

# Not tests/servers/asterisk/: a directory named like this module makes mypy resolve
# `tests.servers.asterisk` to the (namespace) directory instead of this file.
SCENARIOS = Path(__file__).parent / "asterisk-sipp"
SIPP_PCAPS = Path("/usr/share/sip-tester")  # sip-tester ships RFC 2833 DTMF pcaps


def dtmf_pcap(digit: str) -> Path:
    name = {"*": "star", "#": "pound"}.get(digit, digit)
    path = SIPP_PCAPS / f"dtmf_2833_{name}.pcap"
    if not path.exists():
        raise AsteriskMissing(f"missing {path}: {SETUP_HINT}")
    return path


def write_rtp_pcap(ulaw: bytes, out: Path, *, ssrc: int = 0x5EED, payload_type: int = 0) -> Path:
    """Wrap 8 kHz mu-law audio into RTP/UDP/IPv4/Ethernet frames, 20 ms each, as a pcap file.

    sipp's ``play_pcap_audio`` replays the RTP payloads with the recorded timing towards the
    peer's negotiated media address, so any addresses in the file will do.
    """
    frames = [ulaw[i : i + 160] for i in range(0, len(ulaw) - 159, 160)]
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for seq, payload in enumerate(frames):
        rtp = struct.pack("!BBHII", 0x80, payload_type, seq & 0xFFFF, seq * 160, ssrc) + payload
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip_wo_sum = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17,
                                0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        total = sum(struct.unpack("!10H", ip_wo_sum))
        total = (total & 0xFFFF) + (total >> 16)
        checksum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
        ip = ip_wo_sum[:10] + struct.pack("!H", checksum) + ip_wo_sum[12:]
        frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
        usec = seq * 20_000
        chunks.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000,
                                  len(frame), len(frame)))
        chunks.append(frame)
    out.write_bytes(b"".join(chunks))
    return out


def make_speech_pcap(text: str, out: Path) -> Path:
    """Speak ``text`` with espeak-ng and turn it into an RTP pcap (PCMU) for sipp."""
    require_tools("espeak-ng", "sox")
    wav = out.with_suffix(".wav")
    raw = out.with_suffix(".ul")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True,
                   capture_output=True)
    subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-t", "ul", str(raw)], check=True)
    return write_rtp_pcap(raw.read_bytes(), out)


def sox_stat(path: Path, key: str) -> float:
    """One value of ``sox stat`` for a WAV, e.g. "RMS     amplitude" or "Length (seconds)"."""
    out = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                         check=True)
    for line in out.stderr.splitlines():
        if line.startswith(key):
            return float(line.split(":")[1])
    raise ValueError(f"no {key!r} in sox stat output:\n{out.stderr}")


def wav_rms(path: Path) -> float:
    """RMS amplitude of a WAV (0 = digital silence)."""
    return sox_stat(path, "RMS     amplitude")


@dataclass
class Sipp:
    """One running sipp process (a caller or an agent phone)."""

    name: str
    proc: subprocess.Popen[bytes]
    workdir: Path

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)

    def errors(self) -> str:
        texts = [p.read_text(errors="replace")[-2000:]
                 for p in sorted(self.workdir.glob(f"{self.name}*")) if p.suffix in (".log",)]
        return "\n".join(texts) or "(no sipp error log)"


def start_sipp(
    tb: AsteriskTestbed,
    scenario: str,
    workdir: Path,
    *,
    port: int,
    values: dict[str, str],
    call_to: str | None = None,
    name: str | None = None,
) -> Sipp:
    """Render ``tests/servers/asterisk-sipp/<scenario>.xml`` and run sipp on 127.0.0.1:``port``.

    ``call_to`` (an extension) makes it a caller (UAC) towards Asterisk; otherwise it waits for
    one call as a phone (UAS).
    """
    require_tools("sipp")
    name = name or f"{scenario}-{port}"
    text = (SCENARIOS / f"{scenario}.xml").read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text.split("-->", 1)[-1]:
        raise ValueError(f"{scenario}: unfilled placeholders in the scenario")
    xml = workdir / f"{name}.xml"
    xml.write_text(text)
    cmd = ["sipp", "-sf", str(xml), "-i", "127.0.0.1", "-p", str(port),
           "-mp", str(free_port(socket.SOCK_DGRAM)), "-m", "1", "-nostdin",
           "-trace_err", "-error_file", str(workdir / f"{name}-errors.log"),
           "-timeout", "90s", "-timeout_error"]
    if call_to is not None:
        cmd += ["-s", call_to, f"127.0.0.1:{tb.sip_port}"]
    log = open(workdir / f"{name}-screen.txt", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    peer = Sipp(name, proc, workdir)
    tb.peers.append(peer)
    return peer
