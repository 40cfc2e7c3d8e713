"""Run the real hub app under uvicorn on a free port inside a test, with users of every role."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio
import uvicorn
from sqlalchemy import select

from channels.base import Channel
from hub.api.directory import create_user_rows
from hub.app import create_app
from hub.auth.passwords import hash_password
from hub.db.models import Agent, User
from hub.domain import Role
from hub.services import Services
from tests.conftest import Db

PASSWORD = "correct horse battery"


@dataclass
class RunningHub:
    url: str
    services: Services
    tokens: dict[Role, str] = field(default_factory=dict)
    agent_ids: dict[str, str] = field(default_factory=dict)

    def client(self, role: Role | None = None, token: str | None = None) -> httpx.AsyncClient:
        headers = {}
        tok = token or (self.tokens[role] if role else None)
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


async def seed_users(db: Db) -> dict[str, str]:
    """One user per role (plus a second agent), reusing users a config apply already made;
    returns email -> agent id."""
    agents: dict[str, str] = {}
    pw = hash_password(PASSWORD)
    async with db.sessions() as s, s.begin():
        for email, role in [
            ("agent@t.test", Role.AGENT),
            ("agent2@t.test", Role.AGENT),
            ("qa@t.test", Role.QA),
            ("sup@t.test", Role.SUPERVISOR),
            ("admin@t.test", Role.ADMIN),
        ]:
            user = (await s.execute(select(User).where(User.email == email))).scalar_one_or_none()
            if user is None:
                _, agent = await create_user_rows(s, email, email.split("@")[0].title(), role, pw)
                agent_id = agent.id if agent else None
            else:
                user.password_hash = pw
                agent_id = (
                    await s.execute(select(Agent.id).where(Agent.user_id == user.id))
                ).scalar_one_or_none()
            if agent_id:
                agents[email] = agent_id
    return agents


@contextlib.asynccontextmanager
async def running_hub(
    db: Db, channels: dict[str, Channel] | None = None, *, seed: bool = True, **overrides: object
) -> AsyncIterator[RunningHub]:
    settings = db.settings
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)  # type: ignore[arg-type]
    agents = await seed_users(db) if seed else {}
    app = create_app(settings, channels=channels)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    hub = RunningHub(f"http://127.0.0.1:{port}", app.services, agent_ids=agents)
    try:
        async with hub.client() as c:
            for email, role in [
                ("agent@t.test", Role.AGENT),
                ("qa@t.test", Role.QA),
                ("sup@t.test", Role.SUPERVISOR),
                ("admin@t.test", Role.ADMIN),
            ]:
                r = await c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
                assert r.status_code == 200, r.text
                hub.tokens[role] = r.json()["token"]
        yield hub
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def agent_socket(
    url: str, token: str, names: tuple[str, ...]
) -> AsyncIterator[tuple[socketio.AsyncClient, asyncio.Queue[tuple[str, Any]]]]:
    """An ``/agent`` socket.io client (websocket) signed in with ``token``; yields it and a
    queue of ``(event name, data)`` for each of ``names`` it receives."""
    got: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    client = socketio.AsyncClient()
    for name in names:

        async def collect(data: Any, name: str = name) -> None:
            await got.put((name, data))

        client.on(name, collect, namespace="/agent")
    await client.connect(
        url, namespaces=["/agent"], transports=["websocket"], auth={"token": token}, wait_timeout=5
    )
    try:
        yield client, got
    finally:
        await client.disconnect()


async def received(
    got: asyncio.Queue[tuple[str, Any]], count: int, timeout_s: float = 10.0
) -> dict[str, Any]:
    """The next ``count`` distinct events from an :func:`agent_socket` queue, by name."""
    seen: dict[str, Any] = {}
    while len(seen) < count:
        name, data = await asyncio.wait_for(got.get(), timeout_s)
        seen[name] = data
    return seen
