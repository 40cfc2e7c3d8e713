"""Web chat under load: N visitor sockets talking to agents through the real hub.

The hub runs as ``python -m hub.cli serve`` (one uvicorn process, SQLite, the real dispatcher,
the webchat channel built from its config row) in a subprocess. Visitors are python-socketio
``AsyncClient``s on the websocket transport, spread over ``--procs`` client processes (one
client process cannot drive 1,000 sockets at 1,000 msg/s on this machine: each process reports
its CPU use, so the JSON says whether the clients or the server were the limit). Each message
is a ``message`` call on ``/widget``; its ack comes back after the hub stored it.

The agent side is one staff socket on ``/agent`` (it joins every queue room, as the inbox does)
that receives ``interaction.created`` for each visitor message; every ``--reply-every``-th
message it answers through ``POST /api/conversations/{id}/messages`` (the inbox's own path),
and the visitor times the reply's arrival.

Latencies (all on CLOCK_MONOTONIC, shared by processes on one machine):
``latency_*`` is visitor send -> ack; ``agent_latency_*`` is visitor send -> agent-side event;
``reply_latency_*`` is agent API call -> visitor receives it (``reply_api_*``: API call -> 201).
``bare_socketio_per_s`` is a bare python-socketio server (ack plus an emit to an observer room)
driven by the same clients at the same rate in the same run. ``hub_cpu_ms_per_msg`` and
``bare_cpu_ms_per_msg`` are each server's CPU (all threads) per delivered message: on a shared
machine the least noisy comparison (``server_cpu_s_by_thread``: the same CPU per thread,
``loop`` being the event loop's). Prints one JSON object.

Diagnosis: ``--hub-only`` skips the bare server (its fields are then null), ``--sample PATH``
runs the hub under ``bench/loop_sampler.py`` (where the event loop's CPU goes, per role, and
the time of each GC generation, counted from ``go``), ``--profile PATH`` under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import signal
import socket
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PASSWORD = "bench-password-123"
SITE_KEY = "bench-site"
BIG = 1_000_000_000
CENTER = f"""
skills: [english]
queues:
  - name: chat
    required_skills: [{{skill: english, min_level: 1}}]
channels:
  - kind: webchat
    name: bench-site
    address: {SITE_KEY}
    queue: chat
    config:
      allowed_origins: ["*"]
      limits: {{visitor_burst: {BIG}, visitor_per_minute: {BIG}, ip_burst: {BIG},
                ip_per_minute: {BIG}, connect_burst: {BIG}, connect_per_minute: {BIG}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 2)


# ---------------------------------------------------------------- client worker process


async def worker(
    url: str, visitors: int, rate: float, seconds: float, auth: dict[str, Any], drain: float
) -> None:
    """Connect ``visitors`` sockets, say ready, wait for ``go``, send at ``rate`` for
    ``seconds``, then print one JSON line with the latencies seen."""
    import socketio

    acks: list[float] = []
    sent_at: list[float] = []  # per ack: when its message was sent, seconds into the run
    replies: list[float] = []
    errors: dict[str, int] = {}
    clients: list[Any] = []

    def on_message(data: Any) -> None:
        text = str(data.get("text", "")) if isinstance(data, dict) else ""
        if text.startswith("reply|"):
            replies.append(time.monotonic() - float(text.split("|")[1]))

    async def connect_one() -> None:
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("message", on_message, namespace="/widget")
        await sio.connect(
            url, namespaces=["/widget"], transports=["websocket"], auth=auth, wait_timeout=30
        )
        clients.append(sio)

    sem = asyncio.Semaphore(25)

    async def guarded() -> None:
        async with sem:
            try:
                await connect_one()
            except Exception as exc:  # counted, reported: a refused socket is a result
                errors[f"connect:{type(exc).__name__}"] = errors.get("connect", 0) + 1

    await asyncio.gather(*(guarded() for _ in range(visitors)))
    print("ready", len(clients), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start = float(line.split()[1])
    cpu0 = time.process_time()
    pending: set[asyncio.Task[None]] = set()

    async def send(sio: Any, seq: int) -> None:
        t0 = time.monotonic()
        try:
            ack = await sio.call(
                "message",
                {"text": f"bench|{t0}|{seq}", "client_id": f"{os.getpid()}-{seq}"},
                namespace="/widget",
                timeout=20,
            )
        except Exception as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        if isinstance(ack, dict) and "error" in ack:
            code = str(ack["error"].get("code") if isinstance(ack["error"], dict) else "error")
            errors[code] = errors.get(code, 0) + 1
            return
        acks.append(time.monotonic() - t0)
        sent_at.append(t0 - start)

    total = int(rate * seconds)
    for seq in range(total if clients else 0):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(clients[seq % len(clients)], seq))
        pending.add(task)
        task.add_done_callback(pending.discard)
    send_end = time.monotonic()
    if pending:
        await asyncio.wait(pending, timeout=20)
    await asyncio.sleep(drain)  # late agent replies
    cpu = time.process_time() - cpu0
    out = {
        "connected": len(clients),
        "sent": total if clients else 0,
        "acks": acks,
        "sent_at": sent_at,
        "replies": replies,
        "errors": errors,
        "cpu_share": round(cpu / max(time.monotonic() - start, 1e-9), 3),
        "send_lag_s": round(send_end - (start + seconds), 3),
    }
    print(json.dumps(out), flush=True)
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


# ---------------------------------------------------------------- bare baseline server


def bare_server(port: int) -> None:
    """The baseline: ack each message and emit it to an observer room, nothing else."""
    import socketio
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    counter = iter(range(1 << 62))

    @sio.on("connect", namespace="/agent")  # type: ignore[untyped-decorator]
    async def agent_connect(sid: str, environ: Any, auth: Any = None) -> None:
        await sio.enter_room(sid, "staff", namespace="/agent")

    @sio.on("connect", namespace="/widget")  # type: ignore[untyped-decorator]
    async def widget_connect(sid: str, environ: Any, auth: Any = None) -> None:
        return None

    @sio.on("message", namespace="/widget")  # type: ignore[untyped-decorator]
    async def message(sid: str, data: Any) -> dict[str, Any]:
        n = next(counter)
        event = {"id": f"ix_{n}", "conversation_id": sid, "text": data.get("text")}
        await sio.emit("interaction.created", event, room="staff", namespace="/agent")
        return {"id": event["id"], "conversation_id": sid}

    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------- orchestration


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (the hub's search index worker), by their parent pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _child_name(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "process"
    return "index_worker" if b"index_worker" in cmdline else "process"


def cpu_seconds(pid: int) -> float:
    """User+system CPU a process and its children have used (Linux /proc), to show which side
    is saturated."""
    total = 0.0
    for each in [pid, *children(pid)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of a process by ``<name>:<tid>`` (``loop`` for the main thread, the
    event loop's; Python's other threads are all named ``python``, native ones such as tantivy's
    have their own names), to see how much of the server's CPU is not the loop's. A child
    process's threads count as ``child:<name>`` (the search index worker's main thread as
    ``child:index_worker``, another child's as ``child:process``)."""
    out: dict[str, float] = {}
    for each in [pid, *children(pid)]:
        prefix = "" if each == pid else "child:"
        main = "loop" if each == pid else _child_name(each)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{each}/task").iterdir():
                try:
                    raw = (task / "stat").read_text()
                except OSError:  # the thread ended meanwhile
                    continue
                name = main if task.name == str(each) else raw[raw.index("(") + 1 : raw.rindex(")")]
                fields = raw.rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                out[f"{prefix}{name}:{task.name}"] = cpu
    return out


def thread_cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU per thread name between two :func:`thread_cpu` snapshots (threads that ended in
    between are missing: a lower bound)."""
    by_name: dict[str, float] = {}
    for key, cpu in after.items():
        name = key.rsplit(":", 1)[0]
        by_name[name] = by_name.get(name, 0.0) + cpu - before.get(key, 0.0)
    return {k: round(v, 2) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]) if v > 0}


async def wait_port(port: int, proc: asyncio.subprocess.Process, limit_s: float = 60) -> None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if proc.returncode is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


class Observer:
    """The agent side: one staff socket; timestamps each visitor message it is told about and
    answers every ``reply_every``-th one through the REST API."""

    def __init__(self, url: str, token: str | None, reply_every: int) -> None:
        import httpx
        import socketio

        self.url, self.token, self.reply_every = url, token, reply_every
        self.sio = socketio.AsyncClient(reconnection=False)
        self.latencies: list[float] = []
        self.last = 0.0  # when the latest visitor message reached the agent side
        self.reply_status: dict[str, int] = {}
        self.reply_api: list[float] = []  # POST -> 201 (the API's share of reply latency)
        self.tasks: set[asyncio.Task[None]] = set()
        self.http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
        self.sio.on("interaction.created", self._event, namespace="/agent")

    async def connect(self) -> None:
        auth = {"token": self.token} if self.token else None
        await self.sio.connect(
            self.url, namespaces=["/agent"], transports=["websocket"], auth=auth, wait_timeout=30
        )

    def _event(self, data: Any) -> None:
        text = str(data.get("text") or "")
        if not text.startswith("bench|"):
            return
        self.last = time.monotonic()
        self.latencies.append(self.last - float(text.split("|")[1]))
        if self.token and self.reply_every and len(self.latencies) % self.reply_every == 0:
            task = asyncio.create_task(self._reply(str(data["conversation_id"])))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _reply(self, conversation_id: str) -> None:
        try:
            t0 = time.monotonic()
            r = await self.http.post(
                f"/api/conversations/{conversation_id}/messages",
                json={"text": f"reply|{t0}"},
            )
            key = str(r.status_code)
            if r.status_code == 201:
                self.reply_api.append(time.monotonic() - t0)
        except Exception as exc:  # counted: a reply the API could not take is a result
            key = type(exc).__name__
        self.reply_status[key] = self.reply_status.get(key, 0) + 1

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10)
        await self.sio.disconnect()
        await self.http.aclose()


async def drive(
    args: argparse.Namespace, url: str, token: str | None, server_pid: int
) -> dict[str, Any]:
    """Run one load phase against ``url`` and summarize it."""
    observer = Observer(url, token, args.reply_every)
    await observer.connect()
    n, extra = divmod(args.visitors, args.procs)
    per = [n + (i < extra) for i in range(args.procs)]
    auth = json.dumps({"site_key": SITE_KEY})
    procs = [
        await asyncio.create_subprocess_exec(
            PY, __file__, "--worker", url, str(n), str(args.rate / args.procs),
            str(args.seconds), auth, str(args.drain),
            stdin=PIPE, stdout=PIPE, cwd=ROOT,
            limit=1 << 26,
        )
        for n in per
    ]  # fmt: skip
    t_connect = time.monotonic()
    connected = 0
    for p in procs:
        assert p.stdout is not None
        ready = (await asyncio.wait_for(p.stdout.readline(), 120)).decode().split()
        connected += int(ready[1])
    connect_s = time.monotonic() - t_connect
    start = time.monotonic() + 0.5
    server_cpu0 = cpu_seconds(server_pid)
    threads0 = thread_cpu(server_pid)
    if args.sample and token:
        os.kill(server_pid, signal.SIGUSR1)  # the sampler counts from here
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"go {start}\n".encode())
        await p.stdin.drain()
    results = []
    for p in procs:
        assert p.stdout is not None
        results.append(json.loads(await asyncio.wait_for(p.stdout.readline(), 120)))
    server_cpu_s = cpu_seconds(server_pid) - server_cpu0
    threads = thread_cpu_delta(threads0, thread_cpu(server_pid))
    server_cpu = server_cpu_s / (time.monotonic() - start)
    await observer.close()
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
        await p.wait()
    acks = [x for r in results for x in r["acks"]]
    # p99 of the acks of the messages sent in each second: a queue that builds up shows as a
    # rising series, a pause (GC, a slow batch) as one bad second
    by_second: dict[int, list[float]] = {}
    for r in results:
        for at, lat in zip(r["sent_at"], r["acks"], strict=True):
            by_second.setdefault(int(at), []).append(lat)
    replies = [x for r in results for x in r["replies"]]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    # throughput over the whole run: first send until the last message reached the agent side,
    # so a server that queues (latency growing during the run) is not credited the offered rate
    window = observer.last - start
    return {
        "connected": connected,
        "connect_s": round(connect_s, 2),
        "sent": sum(r["sent"] for r in results),
        "acked": len(acks),
        "delivered": len(observer.latencies),
        "deliveries_per_s": round(len(observer.latencies) / max(window, 1e-9), 1),
        "latency_p50_ms": pct(acks, 50),
        "latency_p99_ms": pct(acks, 99),
        "latency_p99_ms_by_second": [pct(by_second[k], 99) for k in sorted(by_second)],
        "agent_latency_p50_ms": pct(observer.latencies, 50),
        "agent_latency_p99_ms": pct(observer.latencies, 99),
        "reply_latency_p50_ms": pct(replies, 50),
        "reply_latency_p99_ms": pct(replies, 99),
        "reply_api_p50_ms": pct(observer.reply_api, 50),
        "reply_api_p99_ms": pct(observer.reply_api, 99),
        "replies_sent": observer.reply_status.get("201", 0),
        "replies_received": len(replies),
        "reply_http_status": observer.reply_status,
        "errors": errors,
        "client_cpu_share_per_proc": [r["cpu_share"] for r in results],
        "server_cpu_share": round(server_cpu, 3),
        # CPU the server spent per delivered message: unlike rates and latencies it does not
        # depend on how much of the (shared, noisy) machine the server was given
        "server_cpu_ms_per_msg": round(server_cpu_s * 1000 / max(len(observer.latencies), 1), 3),
        "server_cpu_s_by_thread": threads,
        "send_lag_s": max(r["send_lag_s"] for r in results),
    }


async def run_hub(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data),
        "HUB_PORT": str(port),
        "HUB_SECRET_KEY": "bench-secret",
        "HUB_LOG_LEVEL": "WARNING",
    }
    (data / "center.yaml").write_text(CENTER)
    user = ["--email", "sup@bench.test", "--name", "Sup", "--role", "supervisor"]
    for cmd, stdin in (
        (["apply", str(data / "center.yaml")], b""),
        (["create-user", *user, "--password-stdin"], PASSWORD.encode() + b"\n"),
    ):
        done = await asyncio.create_subprocess_exec(
            PY, "-m", "hub.cli", *cmd, cwd=ROOT, env=env,
            stdin=PIPE, stdout=PIPE, stderr=PIPE,
        )  # fmt: skip
        _, err = await done.communicate(stdin)
        if done.returncode:
            raise SystemExit(f"hub.cli {cmd[0]} failed: {err.decode()[-2000:]}")
    # --profile: the hub's main thread (its event loop) under cProfile, written when it exits
    # --sample: bench/loop_sampler.py samples the event loop's stack every millisecond
    prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    if args.sample:
        prof = [str(ROOT / "bench/loop_sampler.py"), args.sample]
    hub = await asyncio.create_subprocess_exec(
        PY, *prof, *([] if args.sample else ["-m"]), "hub.cli", "serve", cwd=ROOT, env=env
    )  # fmt: skip
    try:
        await wait_port(port, hub)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url) as c:
            r = await c.post(
                "/api/auth/login", json={"email": "sup@bench.test", "password": PASSWORD}
            )
            r.raise_for_status()
            token = str(r.json()["token"])
        return await drive(args, url, token, hub.pid)
    finally:
        # SIGINT ends uvicorn with KeyboardInterrupt, which the CLI catches: cProfile then
        # writes its file (SIGTERM is re-raised by uvicorn and kills the process before that)
        hub.send_signal(signal.SIGINT) if args.profile or args.sample else hub.terminate()
        await hub.wait()


async def run_bare(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        PY, __file__, "--bare-server", str(port), cwd=ROOT
    )
    try:
        await wait_port(port, server)
        return await drive(args, f"http://127.0.0.1:{port}", None, server.pid)
    finally:
        server.terminate()
        await server.wait()


async def main(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        hub = await run_hub(args, Path(tmp))
    bare = None if args.hub_only else await run_bare(args)
    loader = (ROOT / "widget/visitor/dist/loader.js").read_bytes()
    out = {
        "visitors": hub["connected"],
        "target_rate_per_s": args.rate,
        "seconds": args.seconds,
        "client_procs": args.procs,
        "latency_p50_ms": hub["latency_p50_ms"],
        "latency_p99_ms": hub["latency_p99_ms"],
        "latency_is": "visitor send -> ack (message stored by the hub)",
        "agent_latency_p50_ms": hub["agent_latency_p50_ms"],
        "agent_latency_p99_ms": hub["agent_latency_p99_ms"],
        "agent_latency_is": "visitor send -> interaction.created on the agent socket",
        "deliveries_per_s": hub["deliveries_per_s"],
        "bare_socketio_per_s": bare and bare["deliveries_per_s"],
        "hub_over_bare": bare
        and round(hub["deliveries_per_s"] / max(bare["deliveries_per_s"], 1e-9), 3),
        "hub_cpu_ms_per_msg": hub["server_cpu_ms_per_msg"],
        "bare_cpu_ms_per_msg": bare and bare["server_cpu_ms_per_msg"],
        "widget_gzip_bytes": len(gzip.compress(loader, 9)),
        "hub": hub,
        "bare": bare,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(out))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--visitors", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000.0, help="total messages per second")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--reply-every", type=int, default=20, help="agent answers 1 in N messages")
    p.add_argument("--drain", type=float, default=3.0, help="wait for late replies (s)")
    p.add_argument("--profile", metavar="PATH", help="cProfile the hub's event loop into PATH")
    p.add_argument("--sample", metavar="PATH", help="sample the hub's event loop into PATH")
    p.add_argument(
        "--hub-only", action="store_true", help="skip the bare server (profiling runs only)"
    )
    return p.parse_args()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, n, rate, secs, auth, drain = sys.argv[2:8]
        asyncio.run(worker(url, int(n), float(rate), float(secs), json.loads(auth), float(drain)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--bare-server":
        bare_server(int(sys.argv[2]))
    else:
        asyncio.run(main(parse()))
