"""Voice end to end through the real hub, a real Asterisk 22 and real SIP phones (sipp).

The hub runs with a ``voice`` channel row (configured by ``apply``), its router and dispatcher;
agents log in over socket.io and go ready. A sipp caller dials in and presses 1; the IVR's choice
reaches ingest as CTI metadata, a routing rule sends it to the ``sales`` queue, the router offers
it, the hub rings the offered agent's ``voice_endpoint`` (another sipp), and the answer accepts
the offer. Nothing in between is faked.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from channels.base import Address, AddressKind, ChannelKind, Inbound, InboundKind
from hub.config import apply_config, parse_config
from hub.db.models import Conversation, Offer
from hub.dispatch.early import EarlyOffer
from hub.domain import Role
from hub.wiring.voice import VoiceConfigError, voice_settings
from hub.wiring.voice_calls import VoiceCalls
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_dispatch import AgentSocket, login, ready
from tests.hub.voice_helpers import (
    CALLER,
    NUMBER,
    SQLITE_ONLY,
    agent_phone,
    asterisk_fixture,
    call_events,
    call_in,
    caller_values,
    conversation,
    ready_agent,
    setup_center,
    silent_phone,
    speech_fixture,
    stored_timeline,
    voice_channel,
    voice_row,
    wait_recording,
    wait_ringing,
    wait_status,
)
from tests.servers.asterisk import AsteriskTestbed, wav_rms

asterisk = asterisk_fixture("contacthub-hub")


agent_speech = speech_fixture("Thank you for calling sales, how can I help you today?")


@SQLITE_ONLY
async def test_ivr_to_queue_agent_phone_answers_assigned_caller_hangs_up_recording_in_timeline(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    await setup_center(db, tb)
    phone = agent_phone(tb, tmp_path, agent_speech, ring_ms=300)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        agent_id = hub.agent_ids["agent@t.test"]
        async with ready_agent(hub, tok) as sock:
            t0 = time.monotonic()
            caller = call_in(tb, tmp_path, caller_values(abandon_ms="7000"),
                             scenario="caller_abandon")  # fmt: skip
            offer = await sock.next("offer", timeout=15)
            t_offer = time.monotonic() - t0
            conv_id = offer["conversation_id"]
            assert offer["channel"] == "voice"
            assigned = await sock.next("conversation.assigned", timeout=15)
            t_assigned = time.monotonic() - t0
            assert assigned["id"] == conv_id and assigned["assignee_id"] == agent_id
            conv = await conversation(hub, conv_id)
            assert conv["status"] == "assigned" and conv["assignee_id"] == agent_id
            async with hub.client(token=tok) as c:  # the assigned agent sees the live call
                live = (await c.get(f"/api/calls/{conv_id}")).json()
            assert live["state"] == "connected" and live["ivr_path"] == ["sales"]
            assert live["digits"] == "1"

            done = await wait_status(hub, conv_id, "resolved")  # the caller hung up
            assert done["attributes"]["call"]["outcome"] == "completed"
            assert done["attributes"]["call"]["end_reason"] == "caller_hangup"
            rec = await wait_recording(hub, conv_id)
            async with hub.client(token=tok) as c:
                wav = await c.get(f"/api/media/{rec['attachments'][0]['sha256']}")
                gone = await c.get(f"/api/calls/{conv_id}")
            assert gone.status_code == 409 and gone.json()["code"] == "no_live_call"
    assert caller.wait(10) == 0, caller.errors()
    assert phone.wait(10) == 0, phone.errors()
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF", wav.text
    assert rec["attachments"][0]["content_type"] == "audio/wav"
    path = tmp_path / "recording.wav"
    path.write_bytes(wav.content)
    rms = wav_rms(path)
    assert rms > 0.01, "the call recording in the timeline is silent"

    items = await stored_timeline(db, conv_id)
    kinds = [i["kind"] for i in items]
    assert kinds[0] == "call" and items[0]["payload"]["metadata"]["ivr_path"] == ["sales"]
    assert kinds.index("offer") < kinds.index("assignment")
    events = call_events(items)
    assert [e["event"] for e in events] == ["agent_answered"]
    assert events[0]["endpoint"] == "PJSIP/agent1" and events[0]["agent_id"] == agent_id
    end = [i for i in items if i["payload"].get("metadata", {}).get("event") == "ended"]
    assert len(end) == 1
    resolved = [i for i in items if i["kind"] == "status"]
    assert resolved[-1]["payload"]["status"] == "resolved"
    print(
        f"\noffer after {t_offer * 1000:.0f} ms, assigned after {t_assigned * 1000:.0f} ms "
        f"(from dialing, incl. ~1.2 s IVR), recording RMS {rms:.3f}"
    )


@SQLITE_ONLY
async def test_first_agent_phone_does_not_answer_second_agent_gets_the_call(
    db: Db, asterisk: AsteriskTestbed, agent_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    await setup_center(db, tb)
    silent = silent_phone(tb, tmp_path)
    phone2 = agent_phone(tb, tmp_path, agent_speech, line="agent2")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        t1, t2 = hub.tokens[Role.AGENT], await login(hub, "agent2@t.test")
        a1, a2 = hub.agent_ids["agent@t.test"], hub.agent_ids["agent2@t.test"]
        async with AgentSocket(hub, t1) as s1, AgentSocket(hub, t2) as s2:
            await ready(hub, t1)  # ready first: longest idle, so offered first
            await asyncio.sleep(0.05)
            await ready(hub, t2)
            caller = call_in(tb, tmp_path, caller_values(agent_speech))
            first = await s1.next("offer", timeout=15)
            t = time.monotonic()
            second = await s2.next("offer", timeout=15)
            moved_after = time.monotonic() - t
            assert second["conversation_id"] == first["conversation_id"]
            conv_id = first["conversation_id"]
            assigned = await s2.next("conversation.assigned", timeout=15)
            assert assigned["assignee_id"] == a2
            assert 3 < moved_after < 8, moved_after  # agent 1's phone rang its 4 s
            async with hub.client(token=t1) as c1:  # not theirs: agent 1 may not touch it
                assert (await c1.post(f"/api/calls/{conv_id}/hold")).status_code == 403
            async with hub.client(token=t2) as c2:
                held = await c2.post(f"/api/calls/{conv_id}/hold")
                assert held.status_code == 200 and held.json()["state"] == "held", held.text
                back = await c2.post(f"/api/calls/{conv_id}/unhold")
                assert back.status_code == 200 and back.json()["state"] == "connected"
                again = await c2.post(f"/api/calls/{conv_id}/unhold")
                assert again.status_code == 409 and again.json()["code"] == "bad_call_state"
                bye = await c2.post(f"/api/calls/{conv_id}/hangup")
                assert bye.status_code == 200, bye.text
            done = await wait_status(hub, conv_id, "resolved")
            assert done["assignee_id"] == a2
            assert done["attributes"]["call"]["end_reason"] == "hub"
    assert silent.wait(10) == 0, silent.errors()  # saw the CANCEL of the unanswered ring
    assert phone2.wait(10) == 0, phone2.errors()
    assert caller.wait(10) == 0, caller.errors()
    events = call_events(await stored_timeline(db, conv_id))
    summary = [(e["event"], e.get("agent_id"), e.get("reason")) for e in events]
    assert summary == [
        ("agent_failed", a1, "noanswer"),
        ("agent_answered", a2, None),
        ("hold", None, None),
        ("unhold", None, None),
        ("hangup", None, None),
    ]


@SQLITE_ONLY
async def test_agent_without_phone_is_not_rung_and_caller_abandons_in_queue(
    db: Db, asterisk: AsteriskTestbed, tmp_path: Path
) -> None:
    tb = asterisk
    await setup_center(db, tb, agent2_phone=False)
    async with running_hub(db) as hub:
        channel = await voice_channel(hub)
        t2 = await login(hub, "agent2@t.test")
        async with ready_agent(hub, t2) as sock:
            caller = call_in(tb, tmp_path, caller_values(abandon_ms="3500"),
                             scenario="caller_abandon")  # fmt: skip
            offer = await sock.next("offer", timeout=15)
            conv_id = offer["conversation_id"]
            done = await wait_status(hub, conv_id, "resolved")
            assert caller.wait(10) == 0, caller.errors()
        snapshot = hub.services.extras["dispatcher"].snapshot()
    call = done["attributes"]["call"]
    assert call["outcome"] == "abandoned" and call["queue"] == "sales"
    assert 3.0 <= call["wait_s"] < 10, call
    assert done["assignee_id"] is None
    assert channel.calls() == {}
    items = await stored_timeline(db, conv_id)
    assert [(e["event"], e["reason"]) for e in call_events(items)] == [
        ("not_rung", "no_voice_endpoint")
    ]
    offers = [i["payload"] for i in items if i["kind"] == "offer"]
    assert offers[0]["agent_id"] == hub.agent_ids["agent2@t.test"]
    assert sum(q["abandoned"] for q in snapshot["queues"].values()) == 1
    assert not [i for i in items if i["attachments"]]  # never bridged: nothing recorded


@SQLITE_ONLY
async def test_revoked_offer_stops_the_ringing_phone(
    db: Db, asterisk: AsteriskTestbed, tmp_path: Path
) -> None:
    """The agent's browser goes away while their phone rings: the router revokes the offer at
    once and the hub cancels the ring (the phone sees CANCEL long before the 4 s ring timeout)."""
    tb = asterisk
    await setup_center(db, tb)
    silent = silent_phone(tb, tmp_path)
    async with running_hub(db) as hub:
        channel = await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        sock = AgentSocket(hub, tok)
        await sock.__aenter__()
        await ready(hub, tok)
        caller = call_in(tb, tmp_path, caller_values(abandon_ms="6000"), scenario="caller_abandon")
        offer = await sock.next("offer", timeout=15)
        conv_id = offer["conversation_id"]
        await wait_ringing(channel)
        t = time.monotonic()
        await sock.__aexit__()
        await asyncio.to_thread(silent.wait, 10)
        cancelled_after = time.monotonic() - t
        assert silent.proc.returncode == 0, silent.errors()
        assert cancelled_after < 2.5, cancelled_after
        (call,) = channel.calls().values()
        assert call.state.value == "queued"  # the caller is back to music on hold, still waiting
        done = await wait_status(hub, conv_id, "resolved")
    assert caller.wait(10) == 0, caller.errors()
    assert done["attributes"]["call"]["outcome"] == "abandoned"
    events = call_events(await stored_timeline(db, conv_id))
    assert [(e["event"], e["reason"]) for e in events] == [("agent_failed", "revoked")]


@SQLITE_ONLY
async def test_queued_call_gone_from_asterisk_is_resolved_not_offered_forever(
    db: Db, asterisk: AsteriskTestbed
) -> None:
    """A call queued before a hub restart whose caller left meanwhile: no end event will ever
    come. The first offer finds the (connected) channel does not know it and resolves it."""
    tb = asterisk
    await setup_center(db, tb)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        tok = hub.tokens[Role.AGENT]
        async with ready_agent(hub, tok) as sock:
            receipt = await hub.services.ingestor(Inbound(
                channel=ChannelKind.VOICE, channel_id=NUMBER, external_id="1700000000.42",
                sender=Address(AddressKind.PHONE, CALLER), kind=InboundKind.CALL,
                metadata={"queue": "sales", "ivr_path": ["sales"], "digits": "1"},
            ))  # fmt: skip
            offer = await sock.next("offer", timeout=10)
            assert offer["conversation_id"] == receipt.conversation_id
            done = await wait_status(hub, receipt.conversation_id, "resolved", timeout=10)
    assert done["attributes"]["call"]["outcome"] == "abandoned"
    assert done["attributes"]["call"]["end_reason"] == "call_lost"
    assert done["assignee_id"] is None


def test_voice_config_errors_name_the_key() -> None:
    good: dict[str, Any] = {
        "ari_url": "http://127.0.0.1:8088/ari",
        "ari_user": "u",
        "ari_password": "p",
    }
    settings = voice_settings(voice_row(good))
    assert settings.channel_id == NUMBER and settings.app == "contacthub"
    assert settings.ivr.menu is None and settings.ring_timeout == 15
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "ring_timout_s": 5}, "ring_timout_s"),
        ({k: v for k, v in good.items() if k != "ari_password"}, "ari_password"),
        ({**good, "ari_url": "pbx:8088"}, "ari_url"),
        ({**good, "ring_timeout_s": 0}, "ring_timeout_s"),
        ({**good, "menu": {"prompts": ["sound:x"]}}, "menu"),
        ({**good, "whisper": {"sales": 3}}, "whisper.sales"),
    ]
    for bad, key in cases:
        with pytest.raises(VoiceConfigError) as err:
            voice_settings(voice_row(bad))
        assert err.value.key == key, (bad, err.value)


@SQLITE_ONLY
async def test_bad_voice_row_is_reported_and_does_not_stop_the_hub(db: Db) -> None:
    text = f"""
channels:
  - kind: voice
    name: broken-line
    address: "{NUMBER}"
    config: {{ari_url: "http://127.0.0.1:1/ari", ari_user: u}}
"""
    await apply_config(db.sessions, parse_config(text), env={})
    async with running_hub(db) as hub:
        host = hub.services.extras["channel_host"]
        assert "config.ari_password" in host.failed["broken-line"]
        async with hub.client(Role.SUPERVISOR) as c:
            assert (await c.get("/api/conversations")).status_code == 200


@SQLITE_ONLY
async def test_ring_started_before_the_offer_was_saved_is_cancelled_when_it_was_not(
    db: Db, asterisk: AsteriskTestbed, tmp_path: Path
) -> None:
    """The hub rings as the router decides, while the offer is written (hub.dispatch.early).
    When that write fails the offer never existed: the ringing phone gets a CANCEL, the caller
    stays queued on music on hold, nothing is declined, and the timeline says why it rang."""
    tb = asterisk
    await setup_center(db, tb)
    silent = silent_phone(tb, tmp_path)
    async with running_hub(db) as hub:
        channel = await voice_channel(hub)
        calls = hub.services.extras["voice.calls"]
        assert isinstance(calls, VoiceCalls)
        caller = call_in(tb, tmp_path, caller_values(abandon_ms="6000"), scenario="caller_abandon")
        async with asyncio.timeout(10):  # queued, and nobody is ready: the router waits
            while True:
                async with db.sessions() as s:
                    conv = (await s.execute(select(Conversation).where(
                        Conversation.channel == "voice"))).scalar_one_or_none()  # fmt: skip
                queued = [c for c in channel.calls().values() if c.state.value == "queued"]
                if conv is not None and queued:
                    break
                await asyncio.sleep(0.05)
        saved: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        agent_id = hub.agent_ids["agent@t.test"]
        calls.on_early_offer(EarlyOffer("offer_unsaved", agent_id, conv.id, time.time() + 20,
                                        "PJSIP/agent1", saved))  # fmt: skip
        await wait_ringing(channel)
        saved.set_result(False)
        await asyncio.to_thread(silent.wait, 10)
        assert silent.proc.returncode == 0, silent.errors()  # it saw the CANCEL
        (call,) = channel.calls().values()
        assert call.state.value == "queued"  # back to music on hold, still waiting
        done = await wait_status(hub, conv.id, "resolved")
    assert caller.wait(10) == 0, caller.errors()
    assert done["attributes"]["call"]["outcome"] == "abandoned"
    items = await stored_timeline(db, conv.id)
    assert [(e["event"], e["reason"], e["offer_id"]) for e in call_events(items)] == [
        ("agent_failed", "offer_not_saved", "offer_unsaved")
    ]
    async with db.sessions() as s:
        assert (await s.execute(select(Offer))).first() is None  # nothing decided on it
