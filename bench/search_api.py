"""Search API overhead: ``GET /api/search`` through the running hub vs a raw tantivy query.

Usage: python bench/search_api.py [--docs N] [--rounds R] [--seed S]

Builds a throw-away hub (SQLite, embedded tantivy index) with ``docs`` synthetic interactions
(inserted in bulk, so the outbox trigger fires for each; then indexed by the same ``reindex``
the CLI runs), serves the real app under uvicorn on a free port, logs in as QA and sends a
realistic query mix over HTTP (authentication, parameter validation, role visibility, JSON)
with httpx. The same queries go to the hub's own ``TantivyIndex.search`` (raw) in the same run,
interleaved, so machine load hits both alike. Client and server share one event loop, so the
API time includes the client's HTTP work too (an upper bound on the overhead).

Prints ONE JSON object: ``api_over_raw_ratio`` (median API time / median raw time over the
same queries), ``api_p50_ms``/``api_p95_ms``, ``raw_p50_ms``/``raw_p95_ms`` and the setup.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn
from sqlalchemy import insert

from hub.api.directory import create_user_rows
from hub.api.search import SearchParams, build_query
from hub.app import create_app
from hub.auth.passwords import hash_password
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.db.models import Contact, Conversation, Interaction
from hub.domain import Role
from hub.search.backend import index_dir
from hub.search.maintenance import reindex
from hub.search.service import SearchService
from hub.settings import Settings
from recorder.search import TantivyIndex, Visibility

_TEXT = (
    "the to and a of i you is it for that in we your on this my be with have can thank please "
    "refund invoice billing payment card order delivery shipment tracking account password "
    "login reset cancel subscription upgrade complaint manager callback voicemail transfer "
    "receipt contract warranty repair replacement broken damaged late missing charge credit"
)
WORDS = _TEXT.split()
CHANNELS = ("voice", "email", "fax", "sms", "webchat")
PASSWORD = "benchmark password"


def query_mix(rng: random.Random) -> list[dict[str, str]]:
    """API parameters; the raw side builds the identical SearchQuery from them."""
    domain = WORDS[31:]
    return [
        {"text": "the", "facets": "channel,queue,agent,direction"},
        {"text": "the", "sort": "time_desc"},
        {"text": rng.choice(domain)},
        {"text": f"{rng.choice(domain)} {rng.choice(domain)}"},
        {"text": '"thank you"'},
        {"text": rng.choice(domain), "channel": "voice,email"},
        {"text": rng.choice(domain), "from": "2025-03-01T00:00:00Z", "to": "2025-09-01T00:00:00Z"},
        {"agent": f"ag_{rng.randrange(50):04d}", "facets": "channel,kind"},
        {"text": rng.choice(domain), "sort": "time_asc", "limit": "50"},
    ]


async def seed(settings: Settings, n: int, rng: random.Random) -> None:
    engine = make_engine(settings)
    await upgrade(engine)
    sessions = make_session_factory(engine)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    contacts = max(1, n // 10)
    async with sessions() as s, s.begin():
        await create_user_rows(s, "qa@bench.test", "QA", Role.QA, hash_password(PASSWORD))
        await s.execute(
            insert(Contact), [{"id": f"ct_{i:08d}", "attributes": {}} for i in range(contacts)]
        )
        await s.execute(
            insert(Conversation),
            [
                {
                    "id": f"cv_{i:08d}",
                    "contact_id": f"ct_{i % contacts:08d}",
                    "channel": CHANNELS[i % 5],
                    "queue_id": None,
                    "assignee_id": None,
                    "attributes": {},
                }
                for i in range(max(1, n // 4))
            ],
        )
    batch: list[dict[str, Any]] = []
    for i in range(n):
        conv = i // 4
        batch.append(
            {
                "id": f"ix_{i:09d}",
                "seq": i % 4 + 1,
                "conversation_id": f"cv_{conv:08d}",
                "kind": "message",
                "direction": "inbound" if i % 2 else "outbound",
                "channel": CHANNELS[conv % 5],
                "actor_type": "contact",
                "text": " ".join(rng.choices(WORDS, k=rng.randint(10, 40))),
                "payload": {},
                "created_at": start + timedelta(seconds=rng.randrange(365 * 86_400)),
            }
        )
        if len(batch) == 5_000 or i == n - 1:
            async with sessions() as s, s.begin():
                await s.execute(insert(Interaction), batch)
            batch = []
    index = TantivyIndex.open(index_dir(settings), writer_heap=256_000_000)
    await reindex(sessions, index)
    await index.close()
    await engine.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))], 3)


async def run(n: int, rounds: int, seed_value: int) -> dict[str, Any]:
    rng = random.Random(seed_value)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-search-api-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), secret_key="bench", log_level="WARNING", run_channels=False
        )
        t0 = time.perf_counter()
        await seed(settings, n, rng)
        setup_s = time.perf_counter() - t0
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        api_ms: list[float] = []
        raw_ms: list[float] = []
        try:
            service = app.services.extras["search"]
            assert isinstance(service, SearchService) and service.index is not None
            index = service.index
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
                login = await c.post(
                    "/api/auth/login", json={"email": "qa@bench.test", "password": PASSWORD}
                )
                c.headers["Authorization"] = f"Bearer {login.json()['token']}"
                for params in query_mix(rng):  # warm-up: connections, caches, JIT-free paths
                    await c.get("/api/search", params=params)
                for _ in range(rounds):
                    for params in query_mix(rng):
                        query = build_query(SearchParams.model_validate(params), Visibility())
                        t = time.perf_counter()
                        await index.search(query)
                        raw_ms.append((time.perf_counter() - t) * 1000)
                        t = time.perf_counter()
                        r = await c.get("/api/search", params=params)
                        api_ms.append((time.perf_counter() - t) * 1000)
                        if r.status_code != 200:
                            raise SystemExit(f"API answered {r.status_code}: {r.text}")
        finally:
            server.should_exit = True
            await task
    return {
        "docs": n,
        "queries": len(api_ms),
        "api_over_raw_ratio": round(statistics.median(api_ms) / statistics.median(raw_ms), 2),
        "api_p50_ms": pct(api_ms, 0.5),
        "api_p95_ms": pct(api_ms, 0.95),
        "api_max_ms": round(max(api_ms), 3),
        "raw_p50_ms": pct(raw_ms, 0.5),
        "raw_p95_ms": pct(raw_ms, 0.95),
        "setup_s": round(setup_s, 1),
        "backend": "tantivy+sqlite",
        "loadavg_1m_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.docs, args.rounds, args.seed))))


if __name__ == "__main__":
    main()
