"""A crowd of web-chat visitors disconnecting at once: event-loop time, library vs hub manager.

``python bench/socket_rooms.py [--visitors 1000 5000]``. Each visitor is connected to
``/widget`` in a python-socketio manager and put in its own room and a shared site room (as
``channels.webchat`` does); then all disconnect, one after another, as when a proxy restarts.
Reported per size: the seconds the disconnects took in the library's ``AsyncManager`` and in
the hub's ``HubManager`` (``hub.socket_rooms.RoomIndex``), medians of ``--rounds``, and their
ratio. No server or network: the manager's own bookkeeping, which runs on the event loop.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import socketio

from hub.realtime import HubManager

NS = "/widget"


async def disconnect_all(manager: socketio.AsyncManager, visitors: int) -> float:
    socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    sids = []
    for n in range(visitors):
        sid = await manager.connect(f"eio-{n}", NS)
        await manager.enter_room(sid, NS, f"visitor:site:{n}")
        await manager.enter_room(sid, NS, "site:site")
        sids.append(sid)
    start = time.perf_counter()
    for sid in sids:
        await manager.disconnect(sid, NS)
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    out: dict[str, object] = {"rounds": args.rounds}
    for visitors in args.visitors:
        library, hub = [], []
        for _ in range(args.rounds):  # alternating, so both see the same machine
            library.append(await disconnect_all(socketio.AsyncManager(), visitors))
            hub.append(await disconnect_all(HubManager(), visitors))
        lib_s, hub_s = statistics.median(library), statistics.median(hub)
        out[str(visitors)] = {
            "library_disconnect_all_s": round(lib_s, 4),
            "hub_disconnect_all_s": round(hub_s, 4),
            "library_over_hub": round(lib_s / hub_s, 1),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--visitors", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(p.parse_args()))
