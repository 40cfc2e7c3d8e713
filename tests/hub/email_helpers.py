"""What the hub's end-to-end email tests share: a Dovecot per test, the one-mailbox center, and
the walk from a mail arriving to the agent holding its conversation.

Each test then differs only in how the mailbox is secured (the channel's connection ``config``)
and what it checks once the agent has the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from hub.config import apply_config, parse_config
from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_dispatch import AgentSocket, ready
from tests.servers.dovecot import Dovecot, start_dovecot
from tests.servers.smtpd_server import Received, SmtpServer

REPLY = "Sorry! A new one is on its way."

_CENTER = """\
skills: [english]
queues:
  - name: mail
    required_skills: [{{skill: english, min_level: 1}}]
channels:
  - kind: email
    name: support
    address: "{address}"
    queue: mail
    config:
{config}agents:
  - email: agent@t.test
    name: Agent
    skills: {{english: 3}}
    capacity: {{email: 5}}
"""


@pytest.fixture
def imap() -> Iterator[Dovecot]:
    """A fresh Dovecot for the test, stopped whatever the outcome."""
    server = start_dovecot()
    try:
        yield server
    finally:
        server.stop()


async def apply_mail_center(db: Db, address: str, config: str,
                            env: dict[str, str] | None = None) -> None:
    """One English agent and the ``support`` mailbox at ``address`` into queue ``mail``;
    ``config`` is the channel's connection settings (YAML at the config's level)."""
    body = textwrap.indent(textwrap.dedent(config).lstrip("\n"), " " * 6)
    text = _CENTER.format(address=address, config=body)
    await apply_config(db.sessions, parse_config(text), env=env or {})


@contextlib.asynccontextmanager
async def accepted_mail(db: Db, imap: Dovecot, user: str,
                        message: bytes) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """Run the hub (its channels all up), deliver ``message`` to ``user``'s inbox and let the
    ready agent accept the offer; yields (the agent's API client, the conversation id)."""
    async with running_hub(db) as hub:
        assert hub.services.extras["channel_host"].status()["failed"] == {}
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as agent:
            await ready(hub, tok)
            imap.append(user, [message])
            offer = await agent.next("offer", timeout=20)
            conv_id = offer["conversation_id"]
            async with hub.client(token=tok) as c:
                accepted = await c.post(f"/api/offers/{offer['offer_id']}/accept")
                assert accepted.status_code == 200
                yield c, conv_id


async def reply_sent(c: httpx.AsyncClient, conv_id: str, smtp: SmtpServer,
                     polls: int = 200) -> Received:
    """The agent replies :data:`REPLY`; returns the one mail the SMTP server then received."""
    r = await c.post(f"/api/conversations/{conv_id}/messages", json={"text": REPLY})
    assert r.status_code == 201, r.text
    for _ in range(polls):
        if smtp.handler.messages:
            break
        await asyncio.sleep(0.05)
    [sent] = smtp.handler.messages
    return sent
