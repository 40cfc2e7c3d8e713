"""The channel state store on both databases: upsert, atomic claim, expiry, prefix listing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hub.db.base import utcnow
from hub.state import StateStore
from tests.conftest import Db


async def test_put_get_upsert_delete(db: Db) -> None:
    st = StateStore(db.sessions)
    assert await st.get("ch1", "optout", "+1555") is None
    await st.put("ch1", "optout", "+1555", {"action": "stop", "at": 1})
    await st.put("ch1", "optout", "+1555", {"action": "start", "at": 2})
    assert await st.get("ch1", "optout", "+1555") == {"action": "start", "at": 2}
    assert await st.get("ch2", "optout", "+1555") is None  # scopes are separate
    assert await st.delete("ch1", "optout", "+1555")
    assert not await st.delete("ch1", "optout", "+1555")


async def test_claim_is_atomic_and_expires(db: Db) -> None:
    st = StateStore(db.sessions)
    later = utcnow() + timedelta(hours=1)
    results = await asyncio.gather(*(st.claim("*", "nonce", "sig-1", {}, later) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    past = utcnow() - timedelta(seconds=1)
    assert await st.claim("*", "nonce", "sig-2", {}, past)
    assert await st.get("*", "nonce", "sig-2") is None  # expired entries are invisible
    assert await st.claim("*", "nonce", "sig-2", {"again": True}, later)  # and re-claimable
    assert await st.purge_expired() == 0


async def test_items_by_prefix(db: Db) -> None:
    st = StateStore(db.sessions)
    for key in ("grp1:1", "grp1:2", "grp10:1", "grp2:1"):
        await st.put("ch", "parts", key, {"k": key})
    await st.put("ch", "parts", "grp1:3", {}, utcnow() - timedelta(seconds=1))
    assert [k for k, _ in await st.items("ch", "parts", "grp1:")] == ["grp1:1", "grp1:2"]
    assert len(await st.items("ch", "parts")) == 4
    assert await st.purge_expired() == 1
