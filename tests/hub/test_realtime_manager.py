"""The hub's socket.io client manager sends exactly what the library's manager sends, to the
same sockets, without a task per recipient; a failing socket does not stop the others."""

from __future__ import annotations

from typing import Any

import socketio

from hub.realtime import HubManager, HubPacket

NS = "/agent"


async def _setup(manager: socketio.AsyncManager) -> tuple[socketio.AsyncServer, list[str]]:
    """Three sockets: a and b in room ``r``, c only in ``other``; sends are recorded."""
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager, serializer=HubPacket)
    server.sent = []  # type: ignore[attr-defined]

    async def record(eio_sid: str, pkt: Any) -> None:
        server.sent.append((eio_sid, pkt.encode()))  # type: ignore[attr-defined]

    server._send_eio_packet = record  # type: ignore[method-assign]
    sids = [await manager.connect(eio, NS) for eio in ("eio-a", "eio-b", "eio-c")]
    await manager.enter_room(sids[0], NS, "r")
    await manager.enter_room(sids[1], NS, "r")
    await manager.enter_room(sids[2], NS, "other")
    return server, sids


async def _sends(manager: socketio.AsyncManager, **emit: Any) -> list[tuple[str, Any]]:
    server, sids = await _setup(manager)
    if emit.pop("skip_b", False):
        emit["skip_sid"] = sids[1]
    await manager.emit("interaction.created", {"id": "ix_1", "n": [1, {"x": None}]}, NS, **emit)
    return sorted(server.sent)  # type: ignore[attr-defined]


async def test_same_packets_to_the_same_sockets_as_the_library() -> None:
    for emit in (
        {"room": "r"},
        {"room": ["r", "other"]},
        {"to": "other"},
        {"room": "r", "skip_b": True},
        {"room": "nobody"},
        {},  # the whole namespace
    ):
        ours = await _sends(HubManager(), **dict(emit))
        theirs = await _sends(socketio.AsyncManager(), **dict(emit))
        assert ours == theirs, emit
    assert [eio for eio, _ in await _sends(HubManager(), room="r", skip_b=True)] == ["eio-a"]


async def test_one_failing_socket_does_not_stop_the_others() -> None:
    manager = HubManager()
    server, _ = await _setup(manager)
    reached: list[str] = []

    async def flaky(eio_sid: str, pkt: Any) -> None:
        if eio_sid == "eio-a":
            raise RuntimeError("socket gone")
        reached.append(eio_sid)

    server._send_eio_packet = flaky  # type: ignore[method-assign]
    await manager.emit("x", {"k": 1}, NS, room="r")
    assert reached == ["eio-b"]
