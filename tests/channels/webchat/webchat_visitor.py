"""A visitor driven by python-socketio's real AsyncClient, recording what the server pushes."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

NS = "/widget"


class Visitor:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {
            name: asyncio.Queue()
            for name in ("session", "message", "typing", "receipt", "availability")
        }
        self.connect_error: Any = None
        for name, queue in self.events.items():
            self.client.on(name, self._put(queue), namespace=NS)
        self.client.on("connect_error", self._on_connect_error, namespace=NS)

    @staticmethod
    def _put(queue: asyncio.Queue[Any]) -> Any:
        async def handler(data: Any) -> None:
            queue.put_nowait(data)

        return handler

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def connect(
        self, url: str, auth: Any, *, origin: str | None = None, transport: str = "websocket"
    ) -> dict[str, Any]:
        headers = {"Origin": origin} if origin else {}
        await self.client.connect(
            url, namespaces=[NS], auth=auth, headers=headers, transports=[transport], wait_timeout=5
        )
        session: dict[str, Any] = await self.next("session")
        return session

    async def refused(self, url: str, auth: Any, *, origin: str | None = None) -> Any:
        """Connect expecting a refusal; return the connect_error's data."""
        headers = {"Origin": origin} if origin else {}
        try:
            await self.client.connect(
                url,
                namespaces=[NS],
                auth=auth,
                headers=headers,
                transports=["websocket"],
                wait_timeout=5,
            )
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError("the connection was accepted")
        await self.client.disconnect()
        return self.connect_error

    async def call(self, event: str, *data: Any) -> Any:
        payload: Any = data[0] if len(data) == 1 else data
        return await self.client.call(event, payload, namespace=NS, timeout=5)

    async def next(self, event: str, timeout: float = 5) -> Any:
        return await asyncio.wait_for(self.events[event].get(), timeout)

    def pending(self, event: str) -> int:
        return self.events[event].qsize()

    async def close(self) -> None:
        await self.client.disconnect()
