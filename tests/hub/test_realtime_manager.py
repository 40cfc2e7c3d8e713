"""The hub's socket.io client manager sends exactly what the library's manager sends, to the
same sockets, without a task per recipient; a failing socket does not stop the others."""

from __future__ import annotations

from typing import Any

import pytest
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


PAYLOADS: list[tuple[int, Any, str | None, int | None]] = [
    (socketio.packet.EVENT, ["interaction.created", {"id": "ix_1", "text": "héllo ✓ \u2028",
                             "n": [1, 2.5, None, True, {"x": [1, {"y": "z"}]}]}], "/agent", None),
    (socketio.packet.ACK, [{"id": "ix_1", "conversation_id": "cv_1"}], "/widget", 12),
    (socketio.packet.ACK, [{"error": {"code": "x", "message": "m"}}], "/", 0),
    (socketio.packet.EVENT, ["file", {"data": b"\x00\x01", "name": "a"}], "/widget", None),
    (socketio.packet.EVENT, ["m", [b"a", {"b": bytearray(b"c")}]], None, 5),
    (socketio.packet.EVENT, ["x"], "/agent", None),
    (socketio.packet.CONNECT_ERROR, {"message": "no"}, "/agent", None),
    (socketio.packet.CONNECT, {"sid": "abc"}, "/widget", None),
    (socketio.packet.DISCONNECT, None, "/widget", None),
]  # fmt: skip


def test_packets_encode_as_the_library_encodes_them() -> None:
    """Encoding while deciding binary-or-not gives the library's packet type and bytes, binary
    attachments included; values JSON refuses fail as they do in the library."""
    for kind, data, namespace, ack_id in PAYLOADS:
        ours = HubPacket(kind, data=data, namespace=namespace, id=ack_id)
        theirs = socketio.packet.Packet(kind, data=data, namespace=namespace, id=ack_id)
        assert ours.packet_type == theirs.packet_type, data
        assert ours.encode() == theirs.encode(), data
    for refused in ({1, 2}, object()):
        for cls in (HubPacket, socketio.packet.Packet):
            with pytest.raises(TypeError):
                cls(socketio.packet.EVENT, data=["e", refused]).encode()


def test_packets_decode_as_the_library_decodes_them() -> None:
    for text in ('2/agent,["a",{"b":1,"c":[1.5,null]}]', '312["x"]', '2["n",' + "1" * 50 + "]"):
        ours, theirs = HubPacket(encoded_packet=text), socketio.packet.Packet(encoded_packet=text)
        assert (ours.packet_type, ours.namespace, ours.id, ours.data) == (
            theirs.packet_type, theirs.namespace, theirs.id, theirs.data
        )  # fmt: skip
    for cls in (HubPacket, socketio.packet.Packet):  # the library's bound on integer digits
        with pytest.raises(ValueError):
            cls(encoded_packet='2["n",' + "1" * 101 + "]")
