"""Supervisor listen / whisper / barge through the hub's API on a real call (Asterisk 22 + sipp).

The agent calls a customer (click-to-call); the supervisor (``sup@t.test``, phone ``agent2``)
monitors it. Who may, the mode switches and the timeline are checked here; what each party hears
in each mode is measured in tests/channels/voice/test_voice_snoop.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_dispatch import ready
from tests.hub.test_voice_click_to_call import asterisk, speech
from tests.hub.voice_helpers import (
    CUSTOMER,
    SQLITE_ONLY,
    agent_phone,
    call_events,
    call_in,
    caller_values,
    customer_phone,
    dial,
    ready_agent,
    set_voice_endpoint,
    setup_center,
    setup_outbound,
    stored_timeline,
    voice_channel,
    wait_call_state,
    wait_status,
)
from tests.servers.asterisk import AsteriskTestbed

__all__ = ["asterisk", "speech"]  # fixtures shared with the click-to-call tests


@SQLITE_ONLY
async def test_supervisor_listens_whispers_barges_and_stops_only_supervisors_may(
    db: Db, asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    await setup_outbound(db, tb)
    phone = agent_phone(tb, tmp_path, speech["agent"], ring_ms=100)
    customer = customer_phone(tb, tmp_path, "agent", name="customer", ring_ms="100",
                              speech_pcap=str(speech["customer"]))
    sup_phone = agent_phone(tb, tmp_path, speech["agent"], line="agent2", name="sup")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok, sup = hub.tokens[Role.AGENT], hub.tokens[Role.SUPERVISOR]
        sup_agent = hub.agent_ids["sup@t.test"]
        await ready(hub, tok)
        status, out = await dial(hub, tok, number=CUSTOMER)
        assert status == 201, out
        conv_id = str(out["conversation_id"])
        url = f"/api/calls/{conv_id}/monitor"
        await wait_call_state(hub, tok, conv_id, "connected")

        for role in (Role.AGENT, Role.QA):  # agents never listen in on each other
            async with hub.client(role) as c:
                r = await c.post(url, json={"mode": "listen"})
                assert r.status_code == 403, (role, r.text)
        async with hub.client(token=sup) as c:
            r = await c.post(url, json={"mode": "listen"})  # the supervisor has no phone yet
            assert r.status_code == 409 and r.json()["code"] == "no_voice_endpoint", r.text
        await set_voice_endpoint(db, sup_agent, "PJSIP/agent2")
        async with hub.client(token=sup) as c:
            r = await c.post(url, json={"mode": "shout"})
            assert r.status_code == 422, r.text
            r = await c.post(url, json={"mode": "listen"})  # rings the supervisor's phone
            assert r.status_code == 201, r.text
            assert r.json()["mode"] == "listen" and r.json()["state"] == "live"
            again = await c.post(url, json={"mode": "barge"})
            assert again.status_code == 409 and again.json()["code"] == "already_monitoring"
            r = await c.put(url, json={"mode": "whisper"})
            assert r.status_code == 200 and r.json()["mode"] == "whisper", r.text
            r = await c.put(url, json={"mode": "barge"})
            assert r.status_code == 200 and r.json()["mode"] == "barge", r.text
            assert (await c.get(url)).json()["mode"] == "barge"
            r = await c.delete(url)
            assert r.status_code == 200 and r.json()["state"] == "ended", r.text
            assert (await c.get(url)).status_code == 404
        assert await asyncio.to_thread(sup_phone.wait, 10) == 0, sup_phone.errors()
        async with hub.client(token=tok) as c:  # the call went on; the agent ends it
            assert (await c.get(f"/api/calls/{conv_id}")).json()["state"] == "connected"
            assert (await c.post(f"/api/calls/{conv_id}/hangup")).status_code == 200
        done = await wait_status(hub, conv_id, "resolved")
    for p in (phone, customer):
        assert await asyncio.to_thread(p.wait, 10) == 0, p.errors()
    assert done["attributes"]["call"]["end_reason"] == "hub"
    events = call_events(await stored_timeline(db, conv_id))
    summary = [(e["event"], e.get("mode"), e.get("supervisor_id")) for e in events
               if e["event"].startswith("monitor")]  # fmt: skip
    assert summary == [
        ("monitor_started", "listen", sup_agent),
        ("monitor_mode", "whisper", sup_agent),
        ("monitor_mode", "barge", sup_agent),
        ("monitor_ended", "barge", sup_agent),
    ], summary
    ended = next(e for e in events if e["event"] == "monitor_ended")
    assert ended["reason"] == "stopped"
    assert [e["event"] for e in events][-2:] == ["hangup", "ended"]


@SQLITE_ONLY
async def test_supervisor_listens_to_an_inbound_call_until_the_caller_hangs_up(
    db: Db, asterisk: AsteriskTestbed, speech: dict[str, Path], tmp_path: Path
) -> None:
    tb = asterisk
    await setup_center(db, tb)
    phone = agent_phone(tb, tmp_path, speech["agent"], ring_ms=100)
    sup_phone = agent_phone(tb, tmp_path, speech["agent"], line="agent2", ring_ms=100, name="sup")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok, sup = hub.tokens[Role.AGENT], hub.tokens[Role.SUPERVISOR]
        sup_agent = hub.agent_ids["sup@t.test"]
        await set_voice_endpoint(db, sup_agent, "PJSIP/agent2")
        async with ready_agent(hub, tok) as sock:
            caller = call_in(tb, tmp_path, caller_values(abandon_ms="9000"),
                             scenario="caller_abandon")  # fmt: skip
            assigned = await sock.next("conversation.assigned", timeout=20)
            conv_id = assigned["id"]
            async with hub.client(token=sup) as c:
                r = await c.post(f"/api/calls/{conv_id}/monitor", json={"mode": "listen"})
                assert r.status_code == 201, r.text
            # the caller hangs up: the call ends and so does the monitoring, by itself
            assert await asyncio.to_thread(caller.wait, 20) == 0, caller.errors()
            assert await asyncio.to_thread(sup_phone.wait, 10) == 0, sup_phone.errors()
            await wait_status(hub, conv_id, "resolved")
            async with hub.client(token=sup) as c, asyncio.timeout(5):
                while (await c.get(f"/api/calls/{conv_id}/monitor")).status_code != 404:
                    await asyncio.sleep(0.1)
    assert await asyncio.to_thread(phone.wait, 10) == 0, phone.errors()
    events = call_events(await stored_timeline(db, conv_id))
    monitoring = [(e["event"], e.get("mode"), e.get("reason")) for e in events
                  if e["event"].startswith("monitor")]  # fmt: skip
    assert monitoring == [("monitor_started", "listen", None),
                          ("monitor_ended", "listen", "call_ended")], monitoring
