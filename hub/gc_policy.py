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
"""

from __future__ import annotations

import gc

# (young, middle, old): see the module docstring; the young threshold bounds each young
# collection (it scans at most about this many new objects)
THRESHOLDS = (20_000, 20, 50)


def tune_for_serving() -> tuple[int, int, int]:
    """Apply :data:`THRESHOLDS` (once the hub has started); returns the thresholds before, for
    the app to put back when it stops (tests run many hubs in one process)."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    return before
