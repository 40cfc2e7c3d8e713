"""A sampling profiler for the hub's event loop: ``python bench/loop_sampler.py OUT MODULE ARGS``.

Why: cProfile on an asyncio server charges every resumed coroutine with the time it spent
suspended, so its cumulative numbers say little about where the loop's CPU goes, and it slows
the loop several-fold. This runs ``MODULE`` as ``__main__`` (``hub.cli serve``) while a thread
looks at the main thread's stack every millisecond and weights each look by the CPU that thread
used since the previous one (``/proc`` schedstat), so idle waits and time off the CPU on a
shared machine count for nothing. It counts per function (on top: self; anywhere: inclusive),
per role (``BUCKETS``; ``self_by_bucket``: each role's top functions), the time and longest
pause of each GC generation, and when each older-generation collection ran and how long it
took (``gc_older_collections``). SIGUSR1 (sent by ``bench/chat.py`` at ``go``) resets the
counts; at exit they are written as JSON to ``OUT``.
``LOOP_SAMPLER_FOCUS=<function>`` also keeps the full stacks of samples inside that function.

Caveat: under uvloop the loop's own work is C code, seen as the top frame ``asyncio/runners.py:
run``; the sampler gets the GIL mostly when the loop releases it (polling), so some CPU of the
preceding callbacks lands there too. Compare buckets with each other, not with that line.
"""

from __future__ import annotations

import atexit
import collections
import gc
import json
import os
import runpy
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

IDLE = {"select", "poll"}


# where a sample's CPU goes: the first of these (in this order) found on its stack
BUCKETS = (
    ("http_api", "starlette/routing.py"),
    ("publish", "hub/events.py:publish"),
    ("ingest_write", "batch_writer.py:run"),
    ("ingest_other", "hub/actions/ingest.py"),
    ("widget_event", "namespace.py:trigger_event"),
    ("delivery", "hub/delivery.py"),
    ("search_indexer", "indexer.py"),
    ("dispatch", "hub/dispatch/"),
    ("eio_write", "async_socket.py:writer"),
    ("eio_receive", "async_socket.py:"),
    ("socketio_other", "socketio/"),
)


def _bucket(names: set[str]) -> str:
    for label, part in BUCKETS:
        if any(part in n for n in names):
            return label
    return "loop_or_other"


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per live thread (Linux /proc), by Python thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid, name in names.items():
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / 100
    return out


def _name(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_filename.rsplit('site-packages/', 1)[-1]}:{code.co_name}"


def main() -> None:
    out, module, *rest = sys.argv[1:]
    main_id = threading.get_ident()
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    stacks: collections.Counter[str] = collections.Counter()
    by_bucket: collections.Counter[str] = collections.Counter()  # "bucket | top function"
    total = [0, 0, 0]  # sampled CPU (us), of it idle, samples that failed
    buckets: collections.Counter[str] = collections.Counter()
    focused: collections.Counter[str] = collections.Counter()
    root = f"{Path.cwd()}/"  # the checkout: its frames make the hub_stacks chains
    focus = os.environ.get("LOOP_SAMPLER_FOCUS", "")  # full stacks of samples in this function
    gc_us = [0]
    gc_gen: dict[int, list[int]] = {0: [0, 0, 0], 1: [0, 0, 0], 2: [0, 0, 0]}  # n, us, max us
    gc_log: list[tuple[float, int, int, int]] = []  # each older-generation collection:
    # (seconds since go, generation, us, objects collected)
    t_go = [time.monotonic()]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_us.append(time.perf_counter_ns())
        elif len(gc_us) > 1:
            took = (time.perf_counter_ns() - gc_us.pop()) // 1000
            gc_us[0] += took
            row = gc_gen[info["generation"]]
            row[0] += 1
            row[1] += took
            row[2] = max(row[2], took)
            if info["generation"] > 0:
                gc_log.append(
                    (round(time.monotonic() - t_go[0], 2), info["generation"], took,
                     info["collected"])
                )  # fmt: skip

    gc.callbacks.append(on_gc)
    stop = threading.Event()

    def reset(*_: object) -> None:
        """SIGUSR1 (the bench, at ``go``): count the load phase only, not startup/connects."""
        for c in (own, incl, stacks, buckets, focused, by_bucket):
            c.clear()
        gc_us[0] = 0
        for row in gc_gen.values():
            row[:] = [0, 0, 0]
        total[:] = [0, 0, 0]
        gc_log.clear()
        t_go[0] = time.monotonic()

    signal.signal(signal.SIGUSR1, reset)

    def sample() -> None:
        # each sample is weighted by the CPU the loop's thread used since the previous one
        # (/proc schedstat, ns): so idle waits and time off the CPU (a shared machine) do not
        # count, and the moments this thread gets the GIL (the loop idle or at a switch
        # interval) do not bias the result
        stat = f"/proc/self/task/{threading.main_thread().native_id}/schedstat"

        def cpu_ns() -> int:
            with open(stat) as fh:
                return int(fh.read().split()[0])

        last = cpu_ns()
        while not stop.wait(0.001):
            frame = sys._current_frames().get(main_id)
            now = cpu_ns()
            weight, last = (now - last) // 1000, now
            if frame is None:
                continue
            try:
                count(frame, weight)
            except Exception:  # one odd frame must not end the sampling (it did, once)
                total[2] += 1

    def count(frame: FrameType, weight: int) -> None:
        """One sample: ``weight`` µs of the loop's CPU, spent at ``frame``."""
        total[0] += weight
        if frame.f_code.co_name in IDLE and "selectors" in frame.f_code.co_filename:
            total[1] += weight
            return
        own[_name(frame)] += weight
        seen: set[str] = set()
        chain = []
        f: FrameType | None = frame
        while f is not None:
            name = _name(f)
            if name not in seen:
                seen.add(name)
                incl[name] += weight
            if f.f_code.co_filename.startswith(root) and len(chain) < 4:
                chain.append(name.rsplit("/", 1)[-1])
            f = f.f_back
        stacks[" < ".join(chain)] += weight
        label = _bucket(seen)
        buckets[label] += weight
        by_bucket[f"{label} | {_name(frame)}"] += weight
        if focus and any(focus in n for n in seen):
            full, g = [], frame
            while g is not None:
                full.append(_name(g).rsplit("/", 1)[-1])
                g = g.f_back
            focused[" < ".join(full[:14])] += weight

    def dump() -> None:
        stop.set()
        report = {
            "thread_cpu_s": _thread_cpu(),
            "sampled_us": total[0],
            "idle": total[1],
            "sample_errors": total[2],
            "buckets": buckets.most_common(),
            "gc_us": gc_us[0],
            "gc_by_generation": gc_gen,
            "gc_older_collections": gc_log,
            "gc_count_now": gc.get_count(),
            "gc_frozen": gc.get_freeze_count(),
            "heap_objects": len(gc.get_objects()),
            "focused": focused.most_common(40),
            "self": own.most_common(80),
            "self_by_bucket": by_bucket.most_common(150),
            "inclusive": incl.most_common(150),
            "hub_stacks": stacks.most_common(60),
        }
        with open(out, "w") as fh:
            json.dump(report, fh, indent=1)

    atexit.register(dump)
    sys.setswitchinterval(0.0005)  # the sampler gets the GIL soon after asking
    threading.Thread(target=sample, name="loop-sampler", daemon=True).start()
    time.sleep(0)
    sys.path.insert(0, ".")  # the checkout (cwd), as ``python -m`` would
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
