"""Callback work dialled when an agent accepts it: the real hub, a real Asterisk 22, sipp phones.

The line's ``outbound_endpoint`` is ``PJSIP/{number}@caller`` (the testbed's ``caller`` endpoint
stands in for the trunk; a sipp phone on its port is the customer being called back). The
callback work itself is made as :func:`hub.wiring.voice_queue.make_callback_work` leaves it
(the caller pressing 1 is covered by ``test_voice_transfer_overflow.py``).

Attempt 1: the agent's phone answers, the customer is busy → a failed attempt on the timeline, the
work back in the queue. Attempt 2: offered again, accepted, both answer → connected, recorded,
resolved ``completed``. The database side (limit reached → pending, restart mid-dial) runs on
both backends without Asterisk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from channels.voice.outbound import OutboundEnded
from hub.actions.conversations import conversation_event
from hub.config import apply_config, parse_config
from hub.db.models import (
    Agent,
    Assignment,
    ChannelInstance,
    Contact,
    ContactAddress,
    Conversation,
    Queue,
)
from hub.domain import Role
from hub.ids import new_id
from hub.wiring.voice import VoiceConfigError, voice_settings
from hub.wiring.voice_callbacks import end_attempt
from hub.wiring.voice_queue_config import callback_attempts
from tests.conftest import Db
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_dispatch import AgentSocket
from tests.hub.voice_helpers import (
    CUSTOMER,
    SQLITE_ONLY,
    agent_phone,
    agent_yaml,
    apply_voice_center,
    asterisk_fixture,
    call_events,
    customer_phone,
    ready_agent,
    stored_timeline,
    voice_center,
    voice_channel,
    voice_row,
    wait_recording,
    wait_status,
)
from tests.servers.asterisk import AsteriskTestbed, make_speech_pcap

asterisk = asterisk_fixture("contacthub-cb")

QUEUES = """
queues:
  - name: general
    offer_ttl_s: 30
"""
LINE = """
ring_timeout_s: 5
outbound_endpoint: "PJSIP/{number}@caller"
outbound_ring_timeout_s: 5
queue_experience: {callback_attempts: 2}
"""
AGENTS = [agent_yaml("agent@t.test", "Agent One")]


async def callback_work(db: Db, *, channel_row: bool = True, status: str = "queued",
                        attributes: dict[str, Any] | None = None) -> str:
    """A voice conversation left as callback work for ``CUSTOMER`` (see the module docstring)."""
    async with db.sessions() as s, s.begin():
        queue_id = (await s.execute(select(Queue.id).where(Queue.name == "general"))).scalar_one()
        row = (await s.execute(select(ChannelInstance.id))).scalar_one() if channel_row else None
        contact = Contact(id=new_id("contact"), name="Dana")
        s.add(contact)
        await s.flush()
        s.add(ContactAddress(id=new_id("address"), contact_id=contact.id, kind="phone",
                             value=CUSTOMER))  # the caller's number, as ingest stored it
        conv = Conversation(
            id=new_id("conversation"), contact_id=contact.id, channel="voice",
            channel_instance_id=row, queue_id=queue_id, status=status,
            attributes=attributes or {"callback": {"number": CUSTOMER, "reason": "callback",
                                                   "wait_s": 42.0}, "overflow_done": 1_000_000},
        )  # fmt: skip
        s.add(conv)
    return conv.id


async def queue_callback(db: Db, hub: RunningHub) -> str:
    """Callback work made while the hub runs, announced to its router as queued."""
    conv_id = await callback_work(db)
    async with db.sessions() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        await hub.services.bus.publish([conversation_event("conversation.queued", conv)])
    return conv_id


async def accept_next(hub: RunningHub, sock: AgentSocket, conv_id: str) -> None:
    offer = await sock.next("offer", timeout=15)
    assert offer["conversation_id"] == conv_id, offer
    async with hub.client(token=hub.tokens[Role.AGENT]) as c:
        r = await c.post(f"/api/offers/{offer['offer_id']}/accept")
        assert r.status_code == 200, r.text


@SQLITE_ONLY
async def test_accepted_callback_dials_agent_then_customer_busy_retry_then_connected(
    db: Db, asterisk: AsteriskTestbed, tmp_path: Path
) -> None:
    tb = asterisk
    await apply_voice_center(db, tb, queues=QUEUES, line=LINE, agents=AGENTS)
    speech = make_speech_pcap("Hello, you asked us to call you back.", tmp_path / "agent.pcap")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        agent_id = hub.agent_ids["agent@t.test"]
        async with ready_agent(hub, tok) as sock:
            conv_id = await queue_callback(db, hub)

            # attempt 1: the agent answers, the customer's line is busy
            phone = agent_phone(tb, tmp_path, speech, name="a1")
            busy = customer_phone(tb, tmp_path, "agent_busy", name="busy")
            await accept_next(hub, sock, conv_id)
            assert await asyncio.to_thread(busy.wait, 20) == 0, busy.errors()
            assert await asyncio.to_thread(phone.wait, 20) == 0, phone.errors()

            # back in the queue: offered again; attempt 2 reaches the customer
            phone = agent_phone(tb, tmp_path, speech, name="a2")
            customer = customer_phone(tb, tmp_path, "phone_hangup", name="cust", ring_ms="500",
                                      speech_pcap=str(speech), talk_ms="3000")  # fmt: skip
            await accept_next(hub, sock, conv_id)
            done = await wait_status(hub, conv_id, "resolved", timeout=30)
            rec = await wait_recording(hub, conv_id)
        assert await asyncio.to_thread(customer.wait, 20) == 0, customer.errors()
        assert await asyncio.to_thread(phone.wait, 20) == 0, phone.errors()
    cb = done["attributes"]["callback"]
    assert cb["status"] == "completed" and cb["number"] == CUSTOMER, cb
    assert [(a["attempt"], a["reason"], a["connected"]) for a in cb["attempts"]] == [
        (1, "customer_busy", False), (2, "customer_hangup", True)], cb["attempts"]
    assert all(a["agent_id"] == agent_id for a in cb["attempts"])
    call = done["attributes"]["call"]
    assert call["outcome"] == "completed" and call["direction"] == "outbound", call
    assert call["number"] == CUSTOMER and call["talk_s"] > 1.0, call
    assert rec["attachments"][0]["content_type"] == "audio/wav"
    items = await stored_timeline(db, conv_id)
    events = [(e["event"], e.get("callback_attempt") or e.get("reason")) for e in
              call_events(items)]  # fmt: skip
    assert events == [
        ("dialing", 1), ("agent_answered", None), ("ended", "customer_busy"),
        ("dialing", 2), ("agent_answered", None), ("answered", None),
        ("ended", "customer_hangup"),
    ], events
    statuses = [i["payload"].get("reason") for i in items if i["kind"] == "status"]
    assert statuses == ["callback_retry", "completed"], statuses
    async with db.sessions() as s:  # one assignment per attempt, both closed
        ends = (await s.execute(select(Assignment.end_reason).where(
            Assignment.conversation_id == conv_id).order_by(Assignment.started_at))).scalars()
        assert list(ends) == ["callback_retry", "call_completed"]


async def test_callback_attempts_run_out_pending_with_a_clear_status(db: Db) -> None:
    """The database side on both backends: a failed attempt below the limit requeues, at the
    limit the work is left pending without assignee, and the router is told either way."""
    await apply_config(db.sessions, parse_config(
        "queues:\n  - name: general\nagents:\n  - email: a@t.test\n    name: A\n"), env={})
    conv_id = await callback_work(db, channel_row=False, status="assigned")
    results = []
    for reason in ("customer_noanswer", "agent_busy"):
        async with db.sessions() as s, s.begin():
            conv = await s.get(Conversation, conv_id)
            assert conv is not None
            agent = (await s.execute(select(Agent.id))).scalar_one()
            conv.status, conv.assignee_id = "assigned", agent
            cb = dict(conv.attributes["callback"])
            conv.attributes = {**conv.attributes, "call": {"direction": "outbound"},
                               "callback": {**cb, "status": "dialing",
                                            "attempt": len(cb.get("attempts", [])) + 1}}
            events = await end_attempt(s, conv, OutboundEnded(reason, False, 0.0), limit=2)
        async with db.sessions() as s:
            fresh = await s.get(Conversation, conv_id)
            assert fresh is not None
            results.append((fresh.status, fresh.assignee_id, dict(fresh.attributes),
                            [e.name for e in events]))  # fmt: skip
    (st1, who1, attrs1, ev1), (st2, who2, attrs2, ev2) = results
    assert st1 == "queued" and who1 is None and attrs1["callback"]["status"] == "retry"
    assert ev1 == ["interaction.created", "interaction.created", "conversation.queued"]
    assert "call" not in attrs1  # not mistaken for a live click-to-call after a restart
    assert st2 == "pending" and who2 is None and attrs2["callback"]["status"] == "failed"
    assert ev2[-1] == "conversation.assigned"  # the dispatcher finishes it in the router
    assert [a["reason"] for a in attrs2["callback"]["attempts"]] == [
        "customer_noanswer", "agent_busy"]
    assert [a["attempt"] for a in attrs2["callback"]["attempts"]] == [1, 2]
    assert all(a["agent_id"] for a in attrs2["callback"]["attempts"])


def test_callback_attempts_config() -> None:
    assert callback_attempts(None) == 3
    assert callback_attempts({"callback_attempts": 5}) == 5
    for bad in (0, 11, 2.5, True, "3"):
        with pytest.raises(VoiceConfigError) as err:
            callback_attempts({"callback_attempts": bad})
        assert err.value.key == "queue_experience.callback_attempts"
    base = {"ari_url": "http://x/ari", "ari_user": "u", "ari_password": "p"}
    settings = voice_settings(voice_row({**base, "queue_experience": {"callback_attempts": 4}}))
    assert not hasattr(settings.ivr, "callback_attempts")  # the hub's, not the IVR's
    with pytest.raises(VoiceConfigError):
        voice_settings(voice_row({**base, "queue_experience": {"callback_attempts": 0}}))


@SQLITE_ONLY
async def test_callback_not_dialable_stays_with_the_agent_and_status_says_not_connected(
    db: Db,
) -> None:
    """A voice line whose Asterisk is unreachable: accepting callback work makes no attempt
    (nobody can ring), says why on the timeline and leaves the work with the agent; the inbox's
    ``GET /api/voice/status`` answers 200 "not connected"."""
    from tests.servers.asterisk import free_port

    dead = f"http://127.0.0.1:{free_port()}/ari"  # nothing listens there
    text = voice_center(dead, "u", "cb-dead", queues=QUEUES, line=LINE, agents=AGENTS)
    await apply_config(db.sessions, parse_config(text), env={"ARI_PASSWORD": "x"})
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        async with hub.client(token=tok) as c:
            status = (await c.get("/api/voice/status")).json()
        assert status == {"connected": False, "lines": [
            {"name": "phone-line", "connected": False, "outbound": True}]}, status
        async with ready_agent(hub, tok) as sock:
            conv_id = await queue_callback(db, hub)
            await accept_next(hub, sock, conv_id)
            async with asyncio.timeout(10):
                while not (events := call_events(await stored_timeline(db, conv_id))):
                    await asyncio.sleep(0.1)
            conv_now = await wait_status(hub, conv_id, "assigned")
    assert events == [{"event": "callback_not_dialled", "reason": "voice_not_connected"}], events
    assert conv_now["assignee_id"] == hub.agent_ids["agent@t.test"]
    assert "attempts" not in conv_now["attributes"]["callback"]  # no attempt was made
