"""What the hub's voice tests share: one voice line's center YAML, sipp phones, API polls.

Every hub voice test runs the same kind of center (a ``phone-line`` on ``NUMBER`` into queue
``general``, agents rung at ``PJSIP/agent1``/``agent2`` of the Asterisk testbed) and the same
phones (agents answering with speech, a silent phone, a caller dialling extension 100). Keeping
them here means one place to change when the testbed or the config schema moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from channels.voice import VoiceChannel
from hub.actions.log import interaction_dict
from hub.channel_host import ChannelHost
from hub.config import apply_config, parse_config
from hub.db.models import (
    Agent,
    Assignment,
    ChannelInstance,
    Contact,
    ContactAddress,
    Conversation,
    Interaction,
    Queue,
)
from hub.domain import Role
from hub.ids import new_id
from tests.conftest import Db
from tests.hub.server import RunningHub
from tests.hub.test_dispatch import AgentSocket, ready
from tests.servers.asterisk import (
    AsteriskTestbed,
    Sipp,
    asterisk_testbed,
    dtmf_pcap,
    make_speech_pcap,
    start_sipp,
)

NUMBER = "+14155550100"
CALLER = "+14155550123"
CUSTOMER = "+14155550199"
SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

_LINE = """\
channels:
  - kind: voice
    name: phone-line
    address: "{number}"
    queue: general
    config:
      ari_url: "{ari_url}"
      ari_user: "{user}"
      ari_password_env: ARI_PASSWORD
      app: "{app}"
      default_queue: general
"""


def asterisk_fixture(app: str) -> Callable[[], Iterator[AsteriskTestbed]]:
    """A module's ``asterisk`` fixture: a fresh testbed per test whose Stasis app is ``app``."""

    @pytest.fixture
    def asterisk() -> Iterator[AsteriskTestbed]:
        """A fresh Asterisk testbed (its own chroot instance) for this test."""
        with asterisk_testbed(app=app) as tb:
            yield tb

    return asterisk


def speech_fixture(text: str) -> Callable[[pytest.TempPathFactory], Path]:
    """A module's fixture (named as the module binds it): ``text`` spoken as a sipp RTP pcap,
    synthesized once per module."""

    @pytest.fixture(scope="module")
    def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
        """Speech audio (RTP pcap) a sipp phone plays once it answers."""
        return make_speech_pcap(text, tmp_path_factory.mktemp("speech") / "speech.pcap")

    return speech


def agent_yaml(email: str, name: str, *, capacity: str = "{voice: 1}",
               endpoint: str | None = "PJSIP/agent1", skills: str | None = None) -> str:
    """One entry of the center's ``agents:`` list."""
    lines = [f"  - email: {email}", f"    name: {name}"]
    if skills is not None:
        lines.append(f"    skills: {skills}")
    lines.append(f"    capacity: {capacity}")
    if endpoint is not None:
        lines.append(f"    voice_endpoint: {endpoint}")
    return "\n".join(lines) + "\n"


def voice_center(ari_url: str, user: str, app: str, *, queues: str, line: str,
                 agents: list[str], more: str = "") -> str:
    """A center YAML: ``queues`` (top-level YAML), the voice line with ``line`` added to its
    ``config`` (YAML at the config's level), ``more`` (e.g. routing rules), then ``agents``."""
    text = textwrap.dedent(queues).lstrip("\n")
    text += _LINE.format(number=NUMBER, ari_url=ari_url, user=user, app=app)
    text += textwrap.indent(textwrap.dedent(line).lstrip("\n"), " " * 6)
    text += textwrap.dedent(more).lstrip("\n")
    return text + "agents:\n" + "".join(agents)


async def apply_voice_center(db: Db, tb: AsteriskTestbed, **parts: Any) -> None:
    """Apply :func:`voice_center` for ``tb``, its ARI password passed as the environment."""
    text = voice_center(tb.ari_url, tb.user, tb.app, **parts)
    await apply_config(db.sessions, parse_config(text), env={"ARI_PASSWORD": tb.password})


def voice_row(config: dict[str, Any]) -> ChannelInstance:
    """An unsaved voice channel row, for checking what ``voice_settings`` makes of ``config``."""
    return ChannelInstance(id="ch_x", kind="voice", name="line", address=NUMBER, config=config)


# --- the two centers most tests run ----------------------------------------------------------

# inbound: the IVR's 1 routes to ``sales`` (English), both agents have phones
INBOUND_QUEUES = """
skills: [english]
queues:
  - name: general
  - name: sales
    required_skills: [{skill: english}]
    offer_ttl_s: 20
"""
INBOUND_LINE = """
ring_timeout_s: 4
menu:
  prompts: ["sound:demo-congrats"]
  options: {"1": {label: sales, queue: sales}}
  fallback_queue: general
  timeout_s: 3
  max_tries: 2
"""
INBOUND_RULES = """
routing_rules:
  - name: ivr-sales
    when: {channel: voice, metadata: {queue: sales}}
    queue: sales
"""


async def setup_center(db: Db, tb: AsteriskTestbed, *, agent2_phone: bool = True) -> None:
    """Two agents with English, the IVR's 1 routed to ``sales``; agent 2's phone optional."""
    agents = [
        agent_yaml("agent@t.test", "Agent One", skills="{english: 3}"),
        agent_yaml("agent2@t.test", "Agent Two", skills="{english: 3}",
                   endpoint="PJSIP/agent2" if agent2_phone else None),
    ]  # fmt: skip
    await apply_voice_center(db, tb, queues=INBOUND_QUEUES, line=INBOUND_LINE,
                             more=INBOUND_RULES, agents=agents)


# outbound (click-to-call): the ``caller`` endpoint is the trunk; Agent Two has no phone
OUTBOUND_QUEUES = """
queues:
  - name: general
    offer_ttl_s: 20
"""
OUTBOUND_LINE = """
ring_timeout_s: 3
outbound_endpoint: "PJSIP/{number}@caller"
outbound_ring_timeout_s: 5
"""
OUTBOUND_AGENTS = [
    agent_yaml("agent@t.test", "Agent One", capacity="{voice: 1, webchat: 2}"),
    agent_yaml("agent2@t.test", "Agent Two", endpoint=None),
]


async def add_contact(db: Db, number: str = CUSTOMER, name: str = "Dana") -> str:
    """A contact with one phone address; returns its id."""
    async with db.sessions() as s, s.begin():
        contact = Contact(id=new_id("contact"), name=name)
        s.add(contact)
        await s.flush()
        s.add(ContactAddress(id=new_id("address"), contact_id=contact.id, kind="phone",
                             value=number))  # fmt: skip
    return contact.id


async def assigned_conversation(db: Db, contact_id: str, agent_id: str, *, channel: str,
                                queue: str, subject: str) -> str:
    """A conversation in ``queue`` already assigned to the agent (as the dispatcher leaves it)."""
    async with db.sessions() as s, s.begin():
        queue_id = (await s.execute(select(Queue.id).where(Queue.name == queue))).scalar_one()
        conv = Conversation(id=new_id("conversation"), contact_id=contact_id, channel=channel,
                            queue_id=queue_id, status="assigned", assignee_id=agent_id,
                            subject=subject)  # fmt: skip
        s.add(conv)
        await s.flush()
        s.add(Assignment(id=new_id("assignment"), conversation_id=conv.id, agent_id=agent_id))
    return conv.id


async def setup_outbound(db: Db, tb: AsteriskTestbed) -> str:
    """Apply the center and make a contact with the customer's number; returns its id."""
    await apply_voice_center(db, tb, queues=OUTBOUND_QUEUES, line=OUTBOUND_LINE,
                             agents=OUTBOUND_AGENTS)
    return await add_contact(db)


async def dial(hub: RunningHub, token: str, **body: object) -> tuple[int, dict[str, object]]:
    async with hub.client(token=token) as c:
        r = await c.post("/api/calls", json=body)
    return r.status_code, r.json()


# --- sipp phones -------------------------------------------------------------------------------


def agent_phone(tb: AsteriskTestbed, workdir: Path, speech: Path, *, line: str = "agent1",
                ring_ms: int = 200, name: str | None = None) -> Sipp:
    """A phone on testbed endpoint ``line`` that answers after ``ring_ms`` and plays ``speech``."""
    return start_sipp(tb, "agent", workdir, port=tb.agent_ports[line], name=name,
                      values={"ring_ms": str(ring_ms), "speech_pcap": str(speech)})


def silent_phone(tb: AsteriskTestbed, workdir: Path, line: str = "agent1") -> Sipp:
    """A phone on ``line`` that rings and never answers (it expects the CANCEL)."""
    return start_sipp(tb, "agent_noanswer", workdir, port=tb.agent_ports[line], values={})


def customer_phone(tb: AsteriskTestbed, workdir: Path, scenario: str, *,
                   name: str | None = None, **values: str) -> Sipp:
    """A phone on the caller endpoint (the stand-in trunk): the customer an agent calls."""
    return start_sipp(tb, scenario, workdir, port=tb.caller_port, name=name, values=values)


def call_in(tb: AsteriskTestbed, workdir: Path, values: dict[str, str], *,
            scenario: str = "caller", name: str | None = None) -> Sipp:
    """A caller dialling the line (extension 100) with the sipp scenario ``scenario``."""
    return start_sipp(tb, scenario, workdir, port=tb.caller_port, values=values, call_to="100",
                      name=name)


def caller_values(speech: Path | None = None, **extra: str) -> dict[str, str]:
    """A caller who presses 1 in the IVR after 1.2 s (the ``sales`` choice)."""
    values = {
        "caller_number": CALLER,
        "dtmf_delay_ms": "1200",
        "dtmf_pcap": str(dtmf_pcap("1")),
        "wait_bye_ms": "60000",
        "abandon_ms": "3000",
    }
    if speech is not None:
        values["speech_pcap"] = str(speech)
    values.update(extra)
    return values


# --- the running hub ---------------------------------------------------------------------------


async def voice_channel(hub: RunningHub) -> VoiceChannel:
    """The hub's voice channel, once its ARI connection is up."""
    host = hub.services.extras["channel_host"]
    assert isinstance(host, ChannelHost)
    assert not host.failed, host.failed
    channel = host.channels["voice"]
    assert isinstance(channel, VoiceChannel)
    async with asyncio.timeout(10):
        await channel.connected.wait()
    return channel


async def wait_ringing(channel: VoiceChannel) -> None:
    """Until one of the channel's calls is ringing an agent's phone."""
    async with asyncio.timeout(5):
        while not any(c.state.value == "offering" for c in channel.calls().values()):
            await asyncio.sleep(0.05)


async def wait_call_state(hub: RunningHub, token: str, conv_id: str, state: str,
                          timeout: float = 15) -> None:
    """Until ``GET /api/calls/{conv_id}`` (as ``token``) says ``state``."""
    async with asyncio.timeout(timeout), hub.client(token=token) as c:
        while (await c.get(f"/api/calls/{conv_id}")).json().get("state") != state:
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def ready_agent(hub: RunningHub, token: str) -> AsyncIterator[AgentSocket]:
    """The agent's socket (where offers arrive) open, then the agent ready for work."""
    async with AgentSocket(hub, token) as sock:
        await ready(hub, token)
        yield sock


async def set_voice_endpoint(db: Db, agent_id: str, endpoint: str) -> None:
    async with db.sessions() as s, s.begin():
        await s.execute(update(Agent).where(Agent.id == agent_id).values(voice_endpoint=endpoint))


async def conversation(hub: RunningHub, conv_id: str) -> dict[str, Any]:
    async with hub.client(Role.SUPERVISOR) as c:
        r = await c.get(f"/api/conversations/{conv_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def wait_status(
    hub: RunningHub, conv_id: str, status: str, timeout: float = 20
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (conv := await conversation(hub, conv_id))["status"] != status:
            await asyncio.sleep(0.1)
    return conv


async def timeline(hub: RunningHub, conv_id: str) -> list[dict[str, Any]]:
    async with hub.client(Role.SUPERVISOR) as c:
        r = await c.get(f"/api/conversations/{conv_id}/interactions")
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


def call_events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i["payload"]["call"] for i in items if "call" in i["payload"]]


async def wait_recording(hub: RunningHub, conv_id: str, timeout: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            for item in await timeline(hub, conv_id):
                if item["attachments"] and item["payload"]["metadata"].get("event") == "recording":
                    return item
            await asyncio.sleep(0.2)


async def stored_timeline(db: Db, conv_id: str) -> list[dict[str, Any]]:
    """The stored timeline, read straight from the database (e.g. once the hub stopped)."""
    async with db.sessions() as s:
        rows = (
            await s.execute(
                select(Interaction)
                .where(Interaction.conversation_id == conv_id)
                .order_by(Interaction.seq)
            )
        ).scalars()
        return [interaction_dict(r) for r in rows]
