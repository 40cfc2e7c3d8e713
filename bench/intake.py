"""Intake to offer, end to end: ingest -> commit -> router -> offer persisted and emitted.

Runs the real hub lifespan (ingest, event bus, dispatcher, socket.io emitter) on SQLite and on
PostgreSQL, with ``--agents`` ready agents (an agent holds one live offer at a time, so there is
one agent per item) and feeds ``--items`` new web-chat messages from distinct visitors, first
one at a time, then ``--concurrency`` at a time. A web-chat ingest returns once stored, its
events posted (``hub.actions.ingest.ACK_BEFORE_FANOUT``), so each call here also waits for the
bus to drain (``EventBus.drain``: the dispatcher has routed, persisted and emitted the offer);
items/elapsed is the rate asked for. Prints one JSON object.
"""

# ruff: noqa: E402  (the imports below must follow the sys.path fix)
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# `python bench/intake.py` puts bench/ first on sys.path, where bench/routing.py would shadow
# the routing package: look the packages up from the repository root instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from channels.base import Address, AddressKind, ChannelKind, Inbound
from hub.app import create_app
from hub.auth.passwords import UNUSABLE
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.db.models import Agent, AgentSkill, ChannelInstance, Offer, Queue, Skill, User
from hub.ids import new_id
from hub.settings import Settings

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def seed(settings: Settings, agents: int) -> None:
    engine = make_engine(settings)
    await upgrade(engine)
    sessions = make_session_factory(engine)
    async with sessions() as s, s.begin():
        skill = Skill(id=new_id("skill"), name="english")
        queue = Queue(id=new_id("queue"), name="chat", offer_ttl_s=600,
                      required_skills=[{"skill": "english", "min_level": 1}])
        s.add_all([skill, queue])
        await s.flush()
        s.add(ChannelInstance(id=new_id("channel"), kind="webchat", name="site",
                              address="bench-site", queue_id=queue.id))
        for i in range(agents):
            user = User(id=new_id("user"), email=f"a{i}@bench.test", name=f"A{i}",
                        password_hash=UNUSABLE, role="agent")
            agent = Agent(id=new_id("agent"), user_id=user.id, display_name=f"A{i}",
                          presence="ready", capacity={"webchat": 3})
            s.add_all([user, agent])
            await s.flush()
            s.add(AgentSkill(agent_id=agent.id, skill_id=skill.id, level=3))
    await engine.dispose()


def item(n: int, run: str) -> Inbound:
    return Inbound(channel=ChannelKind.WEBCHAT, channel_id="bench-site",
                   external_id=f"{run}-{n}", sender=Address(AddressKind.VISITOR,
                                                            f"visitor-{run}-{n:06d}"),
                   text=f"hello {n}")


async def measure(settings: Settings, items: int, concurrency: int) -> dict[str, Any]:
    app = create_app(settings)
    async with app.lifespan():
        services = app.services
        dispatcher = services.extras["dispatcher"]
        for _ in range(200):
            if dispatcher.router.snapshot().agents_logged_in:
                break
            await asyncio.sleep(0.05)
        bus = services.bus

        async def ingest(inbound: Inbound) -> None:
            await services.ingestor(inbound)
            await bus.drain()  # its offer is written and emitted

        half = items // 2
        t0, c0 = time.perf_counter(), time.process_time()
        for n in range(half):
            await ingest(item(n, "seq"))
        seq_s = time.perf_counter() - t0
        seq_cpu = time.process_time() - c0
        sem = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with sem:
                await ingest(item(n, "par"))

        t1, c1 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(n) for n in range(items - half)))
        par_s = time.perf_counter() - t1
        par_cpu = time.process_time() - c1
        async with services.sessions() as s:
            offers = (await s.execute(select(func.count()).select_from(Offer))).scalar_one()
    return {"sequential_per_s": round(half / seq_s, 1),
            "sequential_cpu_ms_per_item": round(1000 * seq_cpu / half, 2),
            "concurrent_per_s": round((items - half) / par_s, 1),
            "concurrent_cpu_ms_per_item": round(1000 * par_cpu / (items - half), 2),
            "offers": offers}


async def run_backend(name: str, items: int, agents: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = ""
        db_name = f"contacthub_bench_{uuid.uuid4().hex[:8]}"
        admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        if name == "postgres":
            async with admin.connect() as c:
                await c.execute(text(f'CREATE DATABASE "{db_name}"'))
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db_name}"
        settings = Settings(data_dir=Path(tmp), database_url=url, secret_key="bench",
                            log_level="WARNING")
        try:
            await seed(settings, agents)
            result = await measure(settings, items, concurrency)
        finally:
            if name == "postgres":
                async with admin.connect() as c:
                    await c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            await admin.dispose()
    assert result["offers"] == items, f"{name}: {result['offers']} offers for {items} items"
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    out: dict[str, Any] = {"items": args.items, "agents": args.items,
                           "concurrency": args.concurrency}
    for backend in args.backends.split(","):
        r = await run_backend(backend, args.items, args.items, args.concurrency)
        out[f"{backend}_per_s"] = max(r["sequential_per_s"], r["concurrent_per_s"])
        out[f"{backend}_detail"] = r
    out["note"] = ("per_s is the better of sequential and concurrent intake; each item is "
                   "ingested, committed, routed, its offer persisted and emitted")
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
