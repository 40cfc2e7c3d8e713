"""What the dispatcher shows staff (queue depths, service level) and its calendar.

Kept apart from the dispatcher's serial core: neither changes routing, they only read the
router's snapshot or compute when "today" ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from routing import Router


def next_midnight(now: float, tz: ZoneInfo) -> float:
    """The Unix time of the next local midnight after ``now`` (correct across DST changes)."""
    local = datetime.fromtimestamp(now, tz)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz).timestamp()


def snapshot_dict(router: Router) -> dict[str, Any]:
    """The router's snapshot as the ``queues.snapshot`` event and the API show it."""
    snap = router.snapshot()
    return {
        "at": datetime.fromtimestamp(snap.now, UTC).isoformat() if snap.now else None,
        "agents_logged_in": snap.agents_logged_in,
        "live_offers": snap.live_offers,
        "work_in_routing": snap.work_in_routing,
        "queues": {
            q.queue_id: {
                "depth": q.depth,
                "oldest_wait_s": q.oldest_wait_s,
                "agents_ready": q.agents_ready,
                "agents_busy": q.agents_busy,
                "answered": q.answered,
                "answered_in_target": q.answered_in_target,
                "abandoned": q.abandoned,
                "service_level": q.service_level,
            }
            for q in snap.queues
        },
    }
