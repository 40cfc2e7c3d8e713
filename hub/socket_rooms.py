"""Each socket's rooms, indexed by socket, beside python-socketio's index by room.

Why: the library keeps ``rooms[namespace][room] -> {sid: eio_sid}`` only, so a disconnect (and
``get_rooms``) walks every room of the namespace to find the few a socket is in. Web chat gives
each visitor a room of its own, which makes a disconnect cost O(visitors) and a crowd leaving at
once (a network blip, a proxy restart, the end of the chat bench) quadratic: ~100 ms of event loop
for 1,000 visitors, seconds for 10,000 (``bench/socket_rooms.py``), during which no message is
acknowledged. :class:`RoomIndex` keeps ``(namespace, sid) -> rooms`` in step with every enter and
leave, so a disconnect touches only the socket's own rooms. The library's state afterwards is the
same as its own disconnect leaves (tests/hub/test_socket_rooms.py compares the two).
"""

from __future__ import annotations

import hashlib
from typing import Any

import socketio

Key = tuple[str, str]  # (namespace, sid)


class RoomIndex:
    """Mixin for a python-socketio manager (put it first in the bases)."""

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_sid: dict[Key, dict[Any, None]] = {}  # a dict for the order rooms were entered

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._by_sid.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        rooms = self._by_sid.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del self._by_sid[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **_kwargs: Any) -> None:
        """What the library's disconnect does, reaching the socket's rooms through the index."""
        if namespace not in self.rooms:
            return
        for room in list(self._by_sid.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        """The rooms ``sid`` is in (its own room included, the namespace's ``None`` not)."""
        return [room for room in self._by_sid.get((namespace, sid), ()) if room is not None]


class IndexedRedisManager(RoomIndex, socketio.AsyncRedisManager):  # type: ignore[misc]
    """The Redis manager (several hub processes) with the index."""


def redis_channel(database_url: str) -> str:
    """The Redis pub/sub channel of one deployment: its hub processes share a database, and
    Redis pub/sub ignores the database number, so two deployments on one Redis must not share
    the library's default channel name (each would push its agents' events to the other's
    sockets in rooms of the same name). Derived, not configured: nothing to get wrong."""
    return "contacthub:" + hashlib.sha256(database_url.encode()).hexdigest()[:16]
