"""How the hub's process uses Python's cyclic garbage collector while it serves.

Why: measured on the chat bench (1,000 visitor sockets, 1,000 msg/s), the collector took about
a third of the event loop's CPU (3.3 s of 10.3 s), and its full (oldest generation)
collections paused the loop for up to ~250 ms each: the latency tail. With the default
thresholds (700, 10, 10) a young collection runs every 700 net allocations, and everything in
flight at that moment (tasks, futures, packets of messages waiting for their commit) survives
it and is promoted, so the old generation grows fast and is rescanned in full every second or
so. Larger young thresholds let short-lived objects (one message's packets, rows, events) die
before any collection looks at them, so far fewer reach the old generation and full
collections become rare (none in a 10 s run; GC time 0.4-0.8 s). Nothing is left
uncollected: every generation still runs.

``hub.cli`` freezes everything built at startup (``gc.freeze``) on top of this.

Why 50,000 young (was 20,000; helper chat6, chat bench at 1,000 msg/s, collector logged per
collection): with sockets connected, traffic alone allocates almost no net objects (a packet's
objects die with it, and each socket's waiting receive task, future and timer are replaced, not
added), so what triggers a young collection is growth: the first messages' new conversations,
contacts and router entries. At 20,000 a young collection ran 1.1-1.4 s into each of the three
logged runs (and a second one at 4-6 s in two), each pausing the loop 20-27 ms, because a young
collection also scans those ~60,000 waiting objects (1,000 sockets); the first second's p99 was
10-100 ms above the rest. At 50,000 none ran in a logged 30 s of load. A middle collection
(every 20 young ones) pauses 70-170 ms; a smaller middle threshold (2) split it but put a ~70 ms
pause inside every 10 s run. Memory: at most ~50,000 more net objects between collections, a few
MB.
"""

from __future__ import annotations

import gc

# (young, middle, old): see the module docstring. The young count is net allocations (freeing
# an older object counts down), so it sets how often a young collection runs, not how much it
# scans: 55,000-70,000 objects per young collection at 5,000 and at 20,000 alike
THRESHOLDS = (50_000, 20, 50)


def tune_for_serving() -> tuple[int, int, int]:
    """Apply :data:`THRESHOLDS` (once the hub has started); returns the thresholds before, for
    the app to put back when it stops (tests run many hubs in one process)."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    return before
