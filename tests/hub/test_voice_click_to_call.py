"""Click-to-call end to end: the real hub, a real Asterisk 22, sipp phones for agent and customer.

The voice line's ``outbound_endpoint`` is ``PJSIP/{number}@caller``: the testbed's ``caller``
endpoint stands in for the trunk, and a sipp phone on its port is the customer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.base import Address, AddressKind, ChannelKind, Inbound, InboundKind
from hub.db.models import Contact, ContactAddress
from hub.domain import Role
from hub.ids import new_id
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_dispatch import login
from tests.hub.voice_helpers import (
    CALLER,
    CUSTOMER,
    NUMBER,
    SQLITE_ONLY,
    agent_phone,
    asterisk_fixture,
    call_events,
    conversation,
    customer_phone,
    dial,
    ready_agent,
    setup_outbound,
    silent_phone,
    stored_timeline,
    voice_channel,
    wait_call_state,
    wait_recording,
    wait_status,
)
from tests.servers.asterisk import AsteriskTestbed, make_speech_pcap

asterisk = asterisk_fixture("contacthub-c2c")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("click-to-call")
    return {
        "agent": make_speech_pcap("Hello, this is Ana from the sales team calling you back.",
                                  d / "agent.pcap"),
        "customer": make_speech_pcap("Oh hello, thank you for calling me back so quickly.",
                                     d / "customer.pcap"),
    }


@SQLITE_ONLY
async def test_click_to_call_agent_then_customer_recorded_agent_busy_meanwhile(
    db: Db, asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    contact_id = await setup_outbound(db, tb)
    phone = agent_phone(tb, tmp_path, speech["agent"], ring_ms=300)
    customer = customer_phone(tb, tmp_path, "phone_hangup", ring_ms="800",
                              speech_pcap=str(speech["customer"]), talk_ms="5000")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        agent_id = hub.agent_ids["agent@t.test"]
        t2 = await login(hub, "agent2@t.test")
        async with ready_agent(hub, tok) as sock:
            # what is refused before any phone rings
            assert (await dial(hub, hub.tokens[Role.QA], number=CUSTOMER))[0] == 403
            status, err = await dial(hub, tok, number="12")
            assert status == 422 and err["code"] == "validation_error", err
            status, err = await dial(hub, tok, number="+14155550111", contact_id=contact_id)
            assert status == 409 and err["code"] == "number_not_of_contact", err
            status, err = await dial(hub, t2, number=CUSTOMER)
            assert status == 409 and err["code"] == "no_voice_endpoint", err

            status, out = await dial(hub, tok, number="(415) 555-0199", contact_id=contact_id)
            assert status == 201, out
            conv_id = str(out["conversation_id"])
            assert out["direction"] == "outbound" and out["number"] == CUSTOMER
            assert out["state"] == "agent_ringing"
            conv = await conversation(hub, conv_id)
            assert conv["status"] == "assigned" and conv["assignee_id"] == agent_id
            assert conv["contact_id"] == contact_id and conv["channel"] == "voice"
            dispatcher = hub.services.extras["dispatcher"]
            view = dispatcher.router.agent(agent_id)
            assert ("voice", 1) in view.held  # the router counts the call

            await wait_call_state(hub, tok, conv_id, "connected")  # both answered
            status, err = await dial(hub, tok, number=CUSTOMER)
            assert status == 409 and err["code"] == "agent_busy", err
            # an inbound call arriving now is not offered to the agent on the phone
            queued = await hub.services.ingestor(Inbound(
                channel=ChannelKind.VOICE, channel_id=NUMBER, external_id="1700000000.77",
                sender=Address(AddressKind.PHONE, CALLER), kind=InboundKind.CALL,
                metadata={"queue": "general"},
            ))  # fmt: skip
            with pytest.raises(TimeoutError):
                await sock.next("offer", timeout=1.5)

            done = await wait_status(hub, conv_id, "resolved")  # the customer hung up
            offer = await sock.next("offer", timeout=10)  # free again: now it is offered
            assert offer["conversation_id"] == queued.conversation_id
            rec = await wait_recording(hub, conv_id)
            async with hub.client(token=tok) as c:
                wav = await c.get(f"/api/media/{rec['attachments'][0]['sha256']}")
    assert await asyncio.to_thread(customer.wait, 10) == 0, customer.errors()
    assert await asyncio.to_thread(phone.wait, 10) == 0, phone.errors()
    call = done["attributes"]["call"]
    assert call["outcome"] == "completed" and call["end_reason"] == "customer_hangup", call
    assert call["direction"] == "outbound" and call["number"] == CUSTOMER
    assert 3.0 < call["talk_s"] < 9.0, call
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    items = await stored_timeline(db, conv_id)
    assert items[0]["kind"] == "call" and items[0]["direction"] == "outbound"
    events = [e["event"] for e in call_events(items)]
    assert events == ["dialing", "agent_answered", "answered", "ended"], events
    recs = [i for i in items if i["attachments"]]
    assert len(recs) == 1 and recs[0]["attachments"][0]["content_type"] == "audio/wav"
    assert recs[0]["payload"]["metadata"]["direction"] == "outbound"


@SQLITE_ONLY
async def test_agent_no_answer_then_customer_busy_are_recorded_outcomes(
    db: Db, asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    contact_id = await setup_outbound(db, tb)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        async with hub.client(token=tok) as c:  # offline agents do not call out
            assert (await c.put("/api/agents/me/presence",
                                json={"presence": "offline"})).status_code == 200
        status, err = await dial(hub, tok, number=CUSTOMER)
        assert status == 409 and err["code"] == "agent_offline", err
        async with hub.client(token=tok) as c:  # not ready is fine for calling out
            r = await c.put("/api/agents/me/presence",
                            json={"presence": "not_ready", "reason": "outbound"})
            assert r.status_code == 200, r.text

        silent = silent_phone(tb, tmp_path)
        status, first = await dial(hub, tok, number=CUSTOMER, contact_id=contact_id)
        assert status == 201, first
        missed = await wait_status(hub, str(first["conversation_id"]), "resolved", timeout=15)
        assert await asyncio.to_thread(silent.wait, 10) == 0, silent.errors()

        phone = agent_phone(tb, tmp_path, speech["agent"])
        busy = customer_phone(tb, tmp_path, "agent_busy")
        status, second = await dial(hub, tok, number=CUSTOMER)
        assert status == 201, second
        refused = await wait_status(hub, str(second["conversation_id"]), "resolved", timeout=15)
        assert await asyncio.to_thread(busy.wait, 10) == 0, busy.errors()
        assert await asyncio.to_thread(phone.wait, 10) == 0, phone.errors()
    assert missed["attributes"]["call"]["outcome"] == "agent_noanswer", missed["attributes"]
    assert refused["attributes"]["call"]["outcome"] == "customer_busy", refused["attributes"]
    assert refused["contact_id"] == contact_id  # found by the number
    first_events = call_events(await stored_timeline(db, str(first["conversation_id"])))
    assert [e["event"] for e in first_events] == ["dialing", "ended"]
    assert first_events[-1]["reason"] == "agent_noanswer"
    second_events = call_events(await stored_timeline(db, str(second["conversation_id"])))
    assert [e["event"] for e in second_events] == ["dialing", "agent_answered", "ended"]


async def test_outbound_call_rows_and_contact_by_number(db: Db) -> None:
    """The database side of click-to-call, on SQLite and PostgreSQL: which contact a number
    is, and the conversation opened for the call (assigned, referenced, first item the call)."""
    from hub.api.directory import create_user_rows
    from hub.db.models import Assignment, Conversation, ConversationRef
    from hub.errors import Conflict
    from hub.wiring.voice_store import call_id_of, contact_for_number, open_outbound_call

    async with db.sessions() as s, s.begin():
        _, agent = await create_user_rows(s, "ana@t.test", "Ana", Role.AGENT, "x")
        assert agent is not None
        agent.voice_endpoint = "PJSIP/ana"
        known = Contact(id=new_id("contact"), name="Dana")
        s.add(known)
        await s.flush()
        s.add(ContactAddress(id=new_id("address"), contact_id=known.id, kind="phone",
                             value=CUSTOMER))  # fmt: skip
        merged = Contact(id=new_id("contact"), name="Old Dana", merged_into_id=known.id)
        s.add(merged)
        await s.flush()
        assert (await contact_for_number(s, CUSTOMER, None)).id == known.id
        assert (await contact_for_number(s, CUSTOMER, merged.id)).id == known.id  # followed
        with pytest.raises(Conflict) as err:
            await contact_for_number(s, "+14155550111", known.id)
        assert err.value.code == "number_not_of_contact"
        fresh = await contact_for_number(s, "+14155550111", None)  # unknown: a new contact
        assert fresh.id != known.id
        owner = await s.execute(select(ContactAddress.contact_id).where(
            ContactAddress.value == "+14155550111"))  # fmt: skip
        assert owner.scalar_one() == fresh.id
        conv, events = await open_outbound_call(
            s, contact=known, instance_id=None, queue_id=None, agent=agent, number=CUSTOMER,
            call_id="abc123",
        )  # fmt: skip
        conv_id, agent_id = conv.id, agent.id
    assert [e.name for e in events] == ["interaction.created", "conversation.assigned"]
    async with db.sessions() as s:
        stored = await s.get(Conversation, conv_id)
        assert stored is not None and stored.status == "assigned"
        assert stored.assignee_id == agent_id
        assert stored.attributes["call"] == {"direction": "outbound", "number": CUSTOMER}
        assert await call_id_of(s, conv_id) == "abc123"
        ref = (await s.execute(select(ConversationRef).where(ConversationRef.ref == "abc123")))
        assert ref.scalar_one().conversation_id == conv_id
        open_assignment = (await s.execute(select(Assignment).where(
            Assignment.conversation_id == conv_id))).scalar_one()  # fmt: skip
        assert open_assignment.agent_id == agent_id and open_assignment.ended_at is None
