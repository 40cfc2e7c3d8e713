"""Several hub processes behind one database: socket.io events cross between them through the
real Redis on 127.0.0.1:6379 (``HUB_REDIS_URL``, as docker/compose.yaml sets it).

Two hub apps on one database stand for two processes (the second without a dispatcher, as a
deployment runs exactly one): an agent whose socket is on the first sees, live, a chat that the
second stored. Redis must be running (``tests/servers/redis.sh``); without it these fail.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from channels.base import ChannelKind
from hub.domain import Role
from hub.socket_rooms import redis_channel
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import agent_socket, received, running_hub

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_an_event_from_one_hub_process_reaches_an_agent_on_another(db: Db) -> None:
    probe = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert await probe.ping(), "Redis must answer on 127.0.0.1:6379 (tests/servers/redis.sh)"
    finally:
        await probe.aclose()
    async with (
        running_hub(db, redis_url=REDIS_URL) as first,
        running_hub(db, seed=False, redis_url=REDIS_URL, dispatcher=False) as second,
    ):
        names = ("hello", "interaction.created", "conversation.queued")
        async with agent_socket(first.url, first.tokens[Role.AGENT], names) as (_, got):
            assert (await asyncio.wait_for(got.get(), 5))[0] == "hello"
            receipt = await second.services.ingestor(
                inbound(ChannelKind.WEBCHAT, "visitor-fanout1", "f-1", "across processes")
            )
            seen = await received(got, 2)
            assert seen["interaction.created"]["text"] == "across processes"
            assert seen["interaction.created"]["conversation_id"] == receipt.conversation_id
            assert seen["conversation.queued"]["id"] == receipt.conversation_id


def test_deployments_sharing_a_redis_get_their_own_channel() -> None:
    one = redis_channel("postgresql://db-a/contacthub")
    assert one == redis_channel("postgresql://db-a/contacthub")  # every process of a deployment
    assert one != redis_channel("postgresql://db-b/contacthub")
    assert one != "socketio"  # the library's default, which any other app on that Redis may use
