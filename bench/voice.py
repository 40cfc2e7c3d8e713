"""Voice: how fast the hub rings an agent's phone, next to Asterisk's own Queue(), and how many
answered, recorded calls this machine holds at once. Prints one JSON object.

Everything is real: Asterisk 22 from the test chroot (``tests/servers/asterisk.sh``), sipp
phones on 127.0.0.1, and the hub under uvicorn with its router, dispatcher and voice channel
(SQLite, transcription off: transcripts are deferred work and would only add noise here).

Ring time (``*_ring_ms_*``): from the caller's INVITE leaving sipp (its arrival at Asterisk, over
loopback) to the agent phone (a sipp UAS) receiving the INVITE for that call; both read from
sipp's message logs, which stamp every message with the same wall clock. Calls alternate
between the two paths, one at a time, so both see the same machine:

- ``hub``: extension ``100`` -> Stasis -> ingest (beside answer and MOH) -> router decision ->
  hub originates to the offered agent's ``PJSIP/agent1`` (while the offer is written);
- ``app_queue``: extension ``queue`` -> Queue(bench) ringing the same
  ``PJSIP/agent1`` (``tests/servers/asterisk-app-queue/``, included into the testbed's dialplan).

- ``dial`` (reference only): extension ``dial`` -> Dial(PJSIP/agent1), the PBX's
  floor with no ACD at all.

``ratio`` = hub p50 / app_queue p50 (goal <= 1.2). ``--trace`` splits the hub's ring time into
its steps (``hub_ring_steps_ms_p50``); ``--quick`` measures ring times only.

Concurrency (``max_concurrent_recorded_calls``): see bench/README.md for the criterion. Levels
ramp up; at each level N callers dial within one second, each is answered by one of N ready
hub agents (all on the one auto-answering sipp UAS), says ~4 s of espeak-ng speech and hangs up.
A level holds when every call was answered, assigned and ended cleanly, and every recording is
in the timeline, long enough, and carries the caller's speech.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, update  # noqa: E402

from hub.auth.passwords import hash_password  # noqa: E402
from hub.config import apply_config, parse_config  # noqa: E402
from hub.db.engine import make_engine, make_session_factory  # noqa: E402
from hub.db.migrate import upgrade  # noqa: E402
from hub.db.models import Conversation, Interaction, User  # noqa: E402
from hub.settings import Settings  # noqa: E402
from tests.conftest import Db  # noqa: E402
from tests.hub.server import PASSWORD, RunningHub, running_hub  # noqa: E402
from tests.hub.test_dispatch import AgentSocket, login, ready  # noqa: E402
from tests.servers.asterisk import (  # noqa: E402
    SCENARIOS,
    AsteriskTestbed,
    asterisk_testbed,
    dtmf_pcap,
    free_port,
    sox_stat,
    write_rtp_pcap,
)

APP_QUEUE_CONF = ROOT / "tests/servers/asterisk-app-queue"
LINE = "+14155550100"
SPEECH = "Hello, I would like a refund please. I want to speak to a manager please."
STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")

CENTER = """
skills: [english]
queues:
  - name: general
    offer_ttl_s: 30
channels:
  - kind: voice
    name: bench-line
    address: "{number}"
    queue: general
    config:
      ari_url: "{ari_url}"
      ari_user: "{user}"
      ari_password_env: ARI_PASSWORD
      app: "{app}"
      default_queue: general
      ring_timeout_s: 10
      recording_wait_s: 20
agents:
{agents}
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- sipp ---------------------------------------------------------------------------------


class Phone:
    """One sipp process; ``messages`` is its timestamped SIP message log."""

    def __init__(self, tb: AsteriskTestbed, scenario: str, work: Path, name: str, *, port: int,
                 values: dict[str, str], call_to: str | None = None, calls: int = 1,
                 rate_per_s: int | None = None, trace: bool = True,
                 numbers: list[str] | None = None) -> None:  # fmt: skip
        text = (SCENARIOS / f"{scenario}.xml").read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        xml = work / f"{name}.xml"
        xml.write_text(text)
        self.messages = work / f"{name}-messages.log"
        self.name = name
        cmd = ["sipp", "-sf", str(xml), "-i", "127.0.0.1", "-p", str(port),
               "-mp", str(free_port(socket.SOCK_DGRAM)), "-m", str(calls),
               "-nostdin", "-timeout", "300s", "-timeout_error",
               "-trace_err", "-error_file", str(work / f"{name}-errors.log")]  # fmt: skip
        if trace:
            cmd += ["-trace_msg", "-message_file", str(self.messages)]
        if numbers:  # one caller id per call (one contact, one conversation each)
            csv = work / f"{name}-numbers.csv"
            csv.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
            cmd += ["-inf", str(csv)]
        if call_to is not None:
            cmd += ["-s", call_to, f"127.0.0.1:{tb.sip_port}"]
            if rate_per_s:
                cmd += ["-r", str(rate_per_s), "-rp", "1000", "-l", str(calls)]
        self.proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def wait(self, limit_s: float) -> int:
        deadline = time.monotonic() + limit_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                return -1
            await asyncio.sleep(0.1)
        return int(self.proc.returncode)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def invites(messages: Path, direction: str) -> list[float]:
    """Wall-clock times of the first INVITE per Call-ID ``sent``/``received``, in order."""
    seen: dict[str, float] = {}
    lines = messages.read_text(errors="replace").splitlines() if messages.exists() else []
    i = 0
    while i < len(lines):
        m = STAMP.match(lines[i])
        if m and i + 3 < len(lines) and f"message {direction}" in lines[i + 1] \
                and lines[i + 3].startswith("INVITE "):  # fmt: skip
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            for line in lines[i + 4: i + 30]:
                if line.lower().startswith("call-id:"):
                    seen.setdefault(line.split(":", 1)[1].strip(), at)
                    break
        i += 1
    return sorted(seen.values())


# --- set-up -------------------------------------------------------------------------------


def enable_app_queue(tb: AsteriskTestbed) -> None:
    """Install the Queue() baseline into the running testbed and reload what reads it."""
    etc = tb.host_dir / "etc"
    for name in ("queues.conf", "extensions_app_queue.conf"):
        shutil.copy(APP_QUEUE_CONF / name, etc / name)
    with open(etc / "extensions.conf", "a") as fh:
        fh.write("\n#include extensions_app_queue.conf\n")
    tb.cli("module reload app_queue.so")
    tb.cli("dialplan reload")
    shown = tb.cli("queue show bench")
    if "agent1" not in shown:
        raise RuntimeError(f"app_queue baseline not configured:\n{shown}")
    plan = tb.cli("dialplan show inbound")
    if "Queue(bench" not in plan or "Dial(PJSIP/agent1" not in plan:
        raise RuntimeError(f"the queue extension is missing:\n{plan}")


async def make_db(data_dir: Path) -> Db:
    settings = Settings(data_dir=data_dir, secret_key="bench-secret", transcribe="off",
                        login_attempts_per_minute=10_000)
    engine = make_engine(settings)
    await upgrade(engine)
    return Db(settings, engine, make_session_factory(engine), "sqlite")


async def configure(db: Db, tb: AsteriskTestbed, agents: int) -> list[str]:
    """The center: one line, one queue, ``agents`` agents all on PJSIP/agent1. Returns emails."""
    emails = [f"agent{i:03d}@bench.test" for i in range(agents)]
    rows = "".join(f"  - {{email: {e}, name: Agent {i}, capacity: {{voice: 1}}, "
                   f"voice_endpoint: PJSIP/agent1}}\n" for i, e in enumerate(emails))  # fmt: skip
    text = CENTER.format(number=LINE, ari_url=tb.ari_url, user=tb.user, app=tb.app, agents=rows)
    await apply_config(db.sessions, parse_config(text), env={"ARI_PASSWORD": tb.password})
    pw = hash_password(PASSWORD)
    async with db.sessions() as s, s.begin():
        await s.execute(update(User).where(User.email.in_(emails)).values(password_hash=pw))
    return emails


async def connected(hub: RunningHub) -> None:
    host = hub.services.extras["channel_host"]
    if host.failed:
        raise RuntimeError(f"channel failed: {host.failed}")
    channel = host.channels.get("bench-line") or next(iter(host.channels.values()))
    async with asyncio.timeout(15):
        await channel.connected.wait()


# --- where the hub's ring time goes (--trace) ---------------------------------------------

STEPS = (  # (name, from mark, to mark): marks of one hub call, in order
    ("stasis_event_to_hub", "caller_invite", "stasis_in"),
    ("  asterisk_stamp_to_hub", "stasis_stamped", "stasis_in"),  # the event's own timestamp
    ("ari_answer", "answer_start", "answer_end"),
    ("ari_moh_start", "moh_start", "moh_end"),
    ("stasis_to_ingest", "stasis_in", "submit_start"),
    ("ingest_group_commit", "submit_start", "submit_end"),
    ("to_router_decision", "submit_end", "early_offer"),
    ("decision_to_connect_agent", "early_offer", "connect_agent"),
    ("to_originate_request", "connect_agent", "originate_start"),
    ("ari_originate", "originate_start", "originate_end"),
    ("originate_to_agent_invite", "originate_start", "agent_invite"),
    # off the ring path since the hub rings as the router decides (beside the ring):
    ("  offer_statements", "execute_start", "execute_end"),
    ("  decision_to_offer_event", "early_offer", "offer_event"),
    # inside the ingest step (submit_start -> submit_end):
    ("  ingest_catalog_read", "catalog_start", "catalog_end"),
    ("  ingest_wal_checkpoint", "checkpoint_start", "checkpoint_end"),
    ("  ingest_batch_sql_commit", "batch_start", "batch_end"),
    ("  ingest_writer_total", "writer_start", "writer_end"),
    ("  ingest_publish_to_dispatcher", "publish_start", "dispatch_queued"),
)


class Tracer:
    """Wall-clock marks at each step from StasisStart to the agent leg's originate, by patching
    the classes the hub uses (this process hosts the hub). Calls run one at a time, so the marks
    between one hub call's StasisStart and the next belong to that call."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []

    def mark(self, name: str) -> None:
        self.marks.append((time.time(), name))

    def _wrap(self, cls: Any, attr: str, before: str, after: str | None,
              when: Any = None) -> None:  # fmt: skip
        orig = getattr(cls, attr, None)
        if orig is None:  # renamed since: that step is simply missing from the trace
            return
        tracer = self

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            on = when is None or when(*args, **kwargs)
            if on:
                tracer.mark(before)
            try:
                return await orig(*args, **kwargs)
            finally:
                if on and after:
                    tracer.mark(after)

        setattr(cls, attr, wrapped)

    def _wrap_sync(self, cls: Any, attr: str, name: str, after: str | None = None) -> None:
        orig = getattr(cls, attr, None)
        if orig is None:
            return
        tracer = self

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            tracer.mark(name)
            try:
                return orig(*args, **kwargs)
            finally:
                if after:
                    tracer.mark(after)

        static = isinstance(getattr(cls, "__dict__", {}).get(attr), staticmethod)
        setattr(cls, attr, staticmethod(wrapped) if static else wrapped)

    def install(self) -> None:
        from channels.voice import VoiceChannel
        from channels.voice import events as vev
        from channels.voice.ari import AriClient
        from hub.actions import batch_writer, routing_catalog
        from hub.batching import Batcher
        from hub.dispatch import dispatcher
        from hub.events import EventBus
        from hub.wiring.voice_calls import VoiceCalls

        def stasis(role: str) -> Any:
            def when(_s: Any, e: Any) -> bool:
                hit = isinstance(e, vev.StasisStart) and e.args[:1] == (role,)
                if hit:  # Asterisk's own stamp (ms) of the event, before ours
                    self.marks.append((e.timestamp.timestamp(), "stasis_stamped"))
                return hit

            return when

        self._wrap(VoiceChannel, "_dispatch", "stasis_in", None, stasis("inbound"))
        self._wrap(AriClient, "answer", "answer_start", "answer_end")
        self._wrap(AriClient, "start_moh", "moh_start", "moh_end")
        self._wrap(Batcher, "submit", "submit_start", "submit_end")
        self._wrap_sync(VoiceCalls, "on_early_offer", "early_offer")
        self._wrap(VoiceCalls, "on_event", "offer_event", None,
                   lambda _s, e: e.name == "offer")  # fmt: skip
        self._wrap(dispatcher, "execute", "execute_start", "execute_end")
        self._wrap(VoiceChannel, "connect_agent", "connect_agent", None)
        self._wrap(AriClient, "originate", "originate_start", "originate_end")
        self._wrap(routing_catalog, "load_catalog", "catalog_start", "catalog_end")
        self._wrap_sync(batch_writer.SqliteWriter, "_checkpoint", "checkpoint_start",
                        "checkpoint_end")  # fmt: skip
        self._wrap_sync(batch_writer.SqliteWriter, "_finish", "batch_start", "batch_end")
        self._wrap(batch_writer.SqliteWriter, "run", "writer_start", "writer_end")
        self._wrap(EventBus, "publish", "publish_start", None)
        self._wrap(dispatcher.Dispatcher, "on_event", "dispatch_queued", None,
                   lambda _s, e: e.name == "conversation.queued")  # fmt: skip

    def steps(self, caller_invites: list[float], agent_invites: list[float]) -> dict[str, Any]:
        """Median ms per step over the hub calls (first mark of each name per call), and how
        many calls rang before their offer was written (``rung_before_offer_written``)."""
        starts = [i for i, (_, n) in enumerate(self.marks) if n == "stasis_in"]
        per: dict[str, list[float]] = {name: [] for name, _, _ in STEPS}
        early = 0
        for k, i in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(self.marks)
            if i > 0 and self.marks[i - 1][1] == "stasis_stamped":
                i -= 1  # taken just before stasis_in
            first: dict[str, float] = {}
            for at, name in self.marks[i:end]:
                first.setdefault(name, at)
            if k < len(caller_invites):
                first["caller_invite"] = caller_invites[k]
            if k < len(agent_invites):
                first["agent_invite"] = agent_invites[k]
            for name, a, b in STEPS:
                if a in first and b in first:
                    per[name].append((first[b] - first[a]) * 1000)
            if first.get("connect_agent", 1e18) < first.get("offer_event", 0.0):
                early += 1
        out: dict[str, Any] = {name: round(statistics.median(v), 1)
                               for name, v in per.items() if v}  # fmt: skip
        out["rung_before_offer_written"] = f"{early}/{len(starts)}"
        return out


# --- ring latency -------------------------------------------------------------------------


async def ring_latency(tb: AsteriskTestbed, hub: RunningHub, token: str, work: Path,
                       calls: int) -> dict[str, list[float]]:  # fmt: skip
    """Alternate hub / app_queue calls, one at a time; ring times in ms per path."""
    audio = str(dtmf_pcap("1"))
    phone = Phone(tb, "agent", work, "ring-agent", port=tb.agent_ports["agent1"],
                  values={"ring_ms": "100", "speech_pcap": audio}, calls=3 * calls)  # fmt: skip
    out: dict[str, list[float]] = {"hub": [], "app_queue": [], "dial": [], "hub_sent": [],
                                   "hub_rung": []}
    order: list[str] = []
    callers: list[Phone] = []
    for i in range(calls):
        for path, exten in (("hub", "100"), ("app_queue", "queue"), ("dial", "dial")):
            if path == "hub":
                await ready(hub, token)
            caller = Phone(tb, "caller_abandon", work, f"ring-{path}-{i}", port=tb.caller_port,
                           values={"caller_number": "+14155550123", "dtmf_delay_ms": "200",
                                   "dtmf_pcap": audio, "abandon_ms": "1500"},
                           call_to=exten)  # fmt: skip
            code = await caller.wait(30)
            if code != 0:
                raise RuntimeError(f"{path} call {i} failed (sipp exit {code})")
            callers.append(caller)
            order.append(path)
            await asyncio.sleep(0.5)  # let the hub resolve the call and the agent get free
    await phone.wait(30)
    rung = invites(phone.messages, "received")
    if len(rung) != len(order):
        raise RuntimeError(f"agent phone saw {len(rung)} INVITEs for {len(order)} calls")
    for path, caller, at_agent in zip(order, callers, rung, strict=True):
        sent = invites(caller.messages, "sent")
        out[path].append((at_agent - sent[0]) * 1000)
        if path == "hub":
            out["hub_sent"].append(sent[0])
            out["hub_rung"].append(at_agent)
    return out


# --- concurrency --------------------------------------------------------------------------


async def wav_checks(hub: RunningHub, conv_ids: list[str], work: Path) -> list[tuple[float, float]]:
    """(seconds, RMS) of each conversation's recording; missing ones are (0, 0)."""
    media = hub.services.extras["media"]
    out = []
    async with hub.services.sessions() as s:
        for conv_id in conv_ids:
            rows = (await s.execute(select(Interaction).where(
                Interaction.conversation_id == conv_id, Interaction.kind == "event"))).scalars()
            rec = next((r for r in rows if r.attachments
                        and r.payload.get("metadata", {}).get("event") == "recording"), None)
            if rec is None:
                out.append((0.0, 0.0))
                continue
            path = media.path(rec.attachments[0].sha256)
            wav = work / f"{conv_id}.wav"
            shutil.copy(path, wav)
            out.append((sox_stat(wav, "Length (seconds)"), sox_stat(wav, "RMS     amplitude")))
    return out


async def _settle(hub: RunningHub, since: float, n: int, code: int, work: Path,
                  convs: list[Conversation], ended: list[Conversation],
                  checks: list[tuple[float, float]]) -> None:  # fmt: skip
    """Wait until the level's calls are resolved with their recordings; fills the lists
    in place so a timeout still leaves what was seen."""
    while True:
        async with hub.services.sessions() as s:
            convs[:] = list((await s.execute(select(Conversation).where(
                Conversation.channel == "voice",
                Conversation.created_at >= datetime.fromtimestamp(since - 1).astimezone(),
            ))).scalars())  # fmt: skip
        ended[:] = [c for c in convs if c.status == "resolved"]
        checks[:] = await wav_checks(hub, [c.id for c in ended], work)
        if len(ended) >= n and all(length > 0 for length, _ in checks):
            return
        if code != 0 and len(ended) == len(convs):
            return
        await asyncio.sleep(1.0)


async def one_level(tb: AsteriskTestbed, hub: RunningHub, tokens: list[str], speech: Path,
                    speech_s: float, n: int, work: Path, baseline_rms: float | None
                    ) -> tuple[bool, dict[str, Any]]:  # fmt: skip
    for tok in tokens[:n]:
        await ready(hub, tok)
    since = time.time()
    talk_ms = int(speech_s * 1000) + 1500
    caller = Phone(tb, "caller_talk", work, f"conc-{n}", port=tb.caller_port,
                   numbers=[f"+1415555{n:02d}{i:02d}" for i in range(n)],
                   values={"caller_number": "[field0]", "dtmf_delay_ms": "200",
                           "dtmf_pcap": str(dtmf_pcap("1")), "talk_delay_ms": "2500",
                           "talk_ms": str(talk_ms), "speech_pcap": str(speech)},
                   call_to="100", calls=n, rate_per_s=n)  # fmt: skip
    code = await caller.wait(120)
    await asyncio.sleep(1.0)
    convs: list[Conversation] = []
    ended: list[Conversation] = []
    checks: list[tuple[float, float]] = []
    timed_out = False
    try:
        async with asyncio.timeout(60):  # recordings arrive after the calls end
            await _settle(hub, since, n, code, work, convs, ended, checks)
    except TimeoutError:  # a call never resolved or a recording never came: the level fails
        timed_out = True
    completed = [c for c in ended if (c.attributes.get("call") or {}).get("outcome") == "completed"
                 and c.assignee_id]  # fmt: skip
    min_len = speech_s * 0.9
    rms_floor = 0.5 * baseline_rms if baseline_rms else 0.01
    good = [lr for lr in checks if lr[0] >= min_len and lr[1] >= rms_floor]
    ok = not timed_out and code == 0 and len(convs) == n and len(completed) == n and len(good) == n
    return ok, {
        "calls": n, "sipp_exit": code, "conversations": len(convs), "timed_out": timed_out,
        "answered_completed": len(completed), "recordings_ok": len(good),
        "rms_median": round(statistics.median([r for _, r in checks]), 4) if checks else 0.0,
        "length_min_s": round(min((length for length, _ in checks), default=0.0), 2),
    }


def speech_pcap(work: Path) -> tuple[Path, float]:
    """The callers' words as RTP for sipp, and their length in seconds."""
    tts = work / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "120", "-w", str(tts), SPEECH],
                   check=True, capture_output=True)  # fmt: skip
    ulaw = work / "speech.ul"
    subprocess.run(["sox", "-D", str(tts), "-r", "8000", "-c", "1", "-t", "ul", str(ulaw)],
                   check=True)  # fmt: skip
    return write_rtp_pcap(ulaw.read_bytes(), work / "speech.pcap"), len(ulaw.read_bytes()) / 8000


async def concurrency(tb: AsteriskTestbed, hub: RunningHub, emails: list[str], work: Path,
                      levels: list[int]) -> tuple[int, list[dict[str, Any]]]:  # fmt: skip
    speech, speech_s = speech_pcap(work)
    tokens = [await login(hub, e) for e in emails[: max(levels)]]
    socks = [AgentSocket(hub, t) for t in tokens]
    for sock in socks:
        await sock.__aenter__()
    agent = Phone(tb, "agent", work, "conc-agent", port=tb.agent_ports["agent1"],
                  values={"ring_ms": "100", "speech_pcap": str(dtmf_pcap("1"))},
                  calls=100_000, trace=False)  # fmt: skip
    held = 0
    report: list[dict[str, Any]] = []
    baseline: float | None = None
    try:
        for n in levels:
            ok, facts = await one_level(tb, hub, tokens, speech, speech_s, n, work, baseline)
            facts["held"] = ok
            if not ok:  # what Asterisk said about it (its log is gone with the testbed)
                warnings = [line[-200:] for line in tb.log_tail(400).splitlines()
                            if "WARNING" in line or "ERROR" in line]  # fmt: skip
                facts["asterisk_warnings"] = warnings[-8:]
            report.append(facts)
            log(f"voice bench: {n} concurrent recorded calls -> {facts}")
            if not ok:
                break
            held = n
            if baseline is None:
                baseline = facts["rms_median"]
            await asyncio.sleep(2.0)
    finally:
        agent.stop()
        for sock in socks:
            await sock.__aexit__()
    return held, report


# --- main ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=15, help="ring-time calls per path")
    ap.add_argument("--levels", default="1,4,8,12,16,24,32,48",
                    help="concurrent call counts to try, ascending (stops at the first failure)")
    ap.add_argument("--workdir", type=Path, help="keep sipp logs and recordings here")
    ap.add_argument("--quick", action="store_true", help="ring times only (no concurrency)")
    ap.add_argument("--trace", action="store_true",
                    help="also break the hub's ring time into steps (median ms each)")
    args = ap.parse_args()
    tracer = Tracer() if args.trace else None
    if tracer is not None:
        tracer.install()
    levels = [int(x) for x in args.levels.split(",")]
    if os.geteuid() != 0:
        raise SystemExit("bench/voice.py needs root (the Asterisk chroot)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp, \
            asterisk_testbed(app="contacthub-bench") as tb:  # fmt: skip
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        enable_app_queue(tb)
        db = await make_db(work / "data")
        emails = await configure(db, tb, max(levels) + 1)
        async with running_hub(db) as hub:
            await connected(hub)
            token = await login(hub, emails[0])
            async with AgentSocket(hub, token):
                rings = await ring_latency(tb, hub, token, work, args.calls)
            held, report = 0, []
            if not args.quick:
                held, report = await concurrency(tb, hub, emails[1:], work, levels)
        await db.engine.dispose()
    hub_p50 = statistics.median(rings["hub"])
    queue_p50 = statistics.median(rings["app_queue"])
    print(json.dumps({
        "bench": "voice",
        "calls_per_path": args.calls,
        "hub_ring_ms_p50": round(hub_p50, 1),
        "hub_ring_ms_p90": pct(rings["hub"], 0.9),
        "app_queue_ring_ms_p50": round(queue_p50, 1),
        "app_queue_ring_ms_p90": pct(rings["app_queue"], 0.9),
        "ratio": round(hub_p50 / queue_p50, 2),
        "dial_ring_ms_p50": round(statistics.median(rings["dial"]), 1),
        "ratio_goal": 1.2,
        **({"hub_ring_steps_ms_p50": tracer.steps(rings["hub_sent"], rings["hub_rung"])}
           if tracer is not None else {}),
        **({} if args.quick else {"max_concurrent_recorded_calls": held, "levels": report}),
        "cpus": os.cpu_count(),
        "seconds": round(time.monotonic() - t0, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
