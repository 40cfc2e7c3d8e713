"""The hub's socket.io managers keep each socket's rooms indexed (hub.socket_rooms), and after
any mix of connects, room changes and disconnects they hold exactly what the library's own
manager holds; a disconnect no longer walks every room of the namespace."""

from __future__ import annotations

import random
from typing import Any

import socketio

from hub.realtime import HubManager

NAMESPACES = ("/widget", "/agent")


class _Run:
    """One manager on its own server; sockets are named by connect order (sids are random)."""

    def __init__(self, manager: socketio.AsyncManager) -> None:
        self.manager = manager
        socketio.AsyncServer(async_mode="asgi", client_manager=manager)
        self.sids: dict[int, tuple[str, str]] = {}  # n -> (namespace, sid)
        self.names: dict[str, str] = {}  # sid -> "s<n>"

    async def apply(self, op: tuple[Any, ...]) -> None:
        m = self.manager
        kind, n = op[0], op[1]
        if kind == "connect":
            ns = op[2]
            sid = await m.connect(f"eio-{n}", ns)
            self.sids[n] = (ns, sid)
            self.names[sid] = f"s{n}"
            return
        ns, sid = self.sids[n]
        if kind == "enter":
            await m.enter_room(sid, ns, op[2])
        elif kind == "leave":
            await m.leave_room(sid, ns, op[2])
        elif kind == "close":
            await m.close_room(op[2], ns)
        elif kind == "await_ack":  # an emit with a callback waits for this socket's ack
            m._generate_ack_id(sid, print)
        elif kind == "pre_disconnect":
            m.pre_disconnect(sid, ns)
        elif kind == "disconnect":
            await m.disconnect(sid, ns)
            del self.sids[n]

    def state(self) -> Any:
        """Rooms, pending lists and every live socket's rooms, with sids named by order."""

        def name(room: Any) -> Any:
            return self.names.get(room, room) if isinstance(room, str) else room

        m = self.manager
        rooms = {}
        for ns, by_room in m.rooms.items():
            rooms[ns] = {
                name(room): sorted((self.names[s], e) for s, e in members.items())
                for room, members in by_room.items()
            }
        pending = [
            {ns: sorted(self.names[s] for s in sids) for ns, sids in table.items()}
            for table in (m.pending_connect, m.pending_disconnect)
        ]
        mine = {n: sorted(map(str, map(name, m.get_rooms(sid, ns))))
                for n, (ns, sid) in self.sids.items()}  # fmt: skip
        acks = sorted(self.names[s] for s in m.callbacks)
        return rooms, pending, mine, acks


def _script(seed: int, steps: int = 400) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    live: list[int] = []
    for n in range(steps):
        roll = rng.random()
        if roll < 0.3 or not live:
            ops.append(("connect", n, rng.choice(NAMESPACES)))
            live.append(n)
            continue
        who = rng.choice(live)
        room = f"room-{rng.randrange(6)}"
        if roll < 0.6:
            ops.append(("enter", who, room))
        elif roll < 0.7:
            ops.append(("leave", who, room))
        elif roll < 0.73:
            ops.append(("close", who, room))
        elif roll < 0.75:
            ops.append(("await_ack", who))
        elif roll < 0.8:
            ops.append(("pre_disconnect", who))
        else:
            ops.append(("disconnect", who))
            live.remove(who)
    return ops


async def test_the_same_rooms_as_the_library_after_any_mix_of_changes() -> None:
    for seed in range(25):
        ours, theirs = _Run(HubManager()), _Run(socketio.AsyncManager())
        for step, op in enumerate(_script(seed)):
            await ours.apply(op)
            await theirs.apply(op)
            assert ours.state() == theirs.state(), (seed, step, op)


async def test_a_disconnect_only_touches_the_sockets_own_rooms() -> None:
    manager = HubManager()
    run = _Run(manager)
    for n in range(300):
        await run.apply(("connect", n, "/widget"))
        await run.apply(("enter", n, f"visitor-{n}"))
    touched: list[Any] = []
    leave = manager.basic_leave_room

    def counting(sid: str, namespace: str, room: Any) -> None:
        touched.append(room)
        leave(sid, namespace, room)

    manager.basic_leave_room = counting  # type: ignore[method-assign]
    ns, sid = run.sids[7]
    await manager.disconnect(sid, ns)
    assert sorted(map(str, touched)) == sorted(["None", sid, "visitor-7"])
    assert len(manager.rooms["/widget"]) == 1 + 2 * 299  # None, and each other socket's two
