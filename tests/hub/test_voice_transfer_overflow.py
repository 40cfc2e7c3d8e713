"""The queue experience through the real hub, a real Asterisk 22 and sipp callers.

- A caller waits with nobody ready: the hub's router says where they stand (position 1) and the
  announcement plays; the caller presses 1, hears goodbye and hangs up; the conversation becomes
  callback work with their number, offered to the next ready agent without ringing a phone.
- The queue's overflow step ``voicemail`` after 2 s: the router takes the call out of routing, the
  caller records a message, the WAV lands in the timeline (media store) and the conversation
  goes back to its queue as callback work.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hub.domain import Role
from hub.wiring.voice import VoiceConfigError, voice_settings
from tests.channels.voice.test_voice_transfer_e2e import ended
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.voice_helpers import (
    CALLER,
    SQLITE_ONLY,
    agent_yaml,
    apply_voice_center,
    asterisk_fixture,
    call_events,
    call_in,
    conversation,
    ready_agent,
    speech_fixture,
    timeline,
    voice_channel,
    voice_row,
    wait_status,
)
from tests.servers.asterisk import AsteriskTestbed, dtmf_pcap, wav_rms

asterisk = asterisk_fixture("contacthub-hub")

LINE = """
ring_timeout_s: 4
queue_experience: {announce_s: 1, callback_digit: "1"}
"""


caller_speech = speech_fixture("Hello, please call me back about my broken router.")


async def setup(db: Db, tb: AsteriskTestbed, overflow: str = "[]") -> None:
    queues = f"queues:\n  - name: general\n    offer_ttl_s: 20\n    overflow: {overflow}\n"
    await apply_voice_center(db, tb, queues=queues, line=LINE,
                             agents=[agent_yaml("agent@t.test", "Agent One")])


async def conv_of_call(hub: Any, timeout: float = 15) -> str:
    async with asyncio.timeout(timeout), hub.client(Role.SUPERVISOR) as c:
        while True:
            items = (await c.get("/api/conversations", params={"channel": "voice"})).json()
            rows = items.get("items", items) if isinstance(items, dict) else items
            if rows:
                return str(rows[0]["id"])
            await asyncio.sleep(0.1)


@SQLITE_ONLY
async def test_announcement_then_caller_presses_1_and_becomes_callback_work(
    db: Db, asterisk: AsteriskTestbed, tmp_path: Path
) -> None:
    tb = asterisk
    await setup(db, tb)
    async with running_hub(db) as hub:
        await voice_channel(hub)
        caller = call_in(tb, tmp_path, {
            "caller_number": CALLER, "dtmf_delay_ms": "4500", "dtmf_pcap": str(dtmf_pcap("1")),
            "speech_pcap": str(dtmf_pcap("5")), "wait_bye_ms": "30000",
        })  # fmt: skip
        conv_id = await conv_of_call(hub)
        await ended(caller, timeout=20)  # goodbye, then we hung up
        conv = await wait_status(hub, conv_id, "queued", 10)
        async with asyncio.timeout(10):
            while not (conv := await conversation(hub, conv_id))["attributes"].get("callback"):
                await asyncio.sleep(0.1)
        callback = conv["attributes"]["callback"]
        assert callback["number"] == CALLER and callback["reason"] == "callback"
        assert "queue-youarenext" in tb.log_tail(400), "position 1 was never announced"

        tok = hub.tokens[Role.AGENT]
        async with ready_agent(hub, tok) as sock:
            offer = await sock.next("offer", timeout=10)
            assert offer["conversation_id"] == conv_id
            async with hub.client(token=tok) as c:
                r = await c.post(f"/api/offers/{offer['offer_id']}/accept")
                assert r.status_code == 200, r.text
            await wait_status(hub, conv_id, "assigned", 10)
        events = call_events(await timeline(hub, conv_id))
        assert not [e for e in events if e["event"] in ("not_rung", "agent_failed")], events


@SQLITE_ONLY
async def test_max_wait_overflow_sends_the_caller_to_voicemail_wav_in_timeline(
    db: Db, asterisk: AsteriskTestbed, caller_speech: Path, tmp_path: Path
) -> None:
    tb = asterisk
    await setup(db, tb, overflow="[{after_s: 2, action: voicemail}]")
    async with running_hub(db) as hub:
        await voice_channel(hub)
        caller = call_in(tb, tmp_path, {
            "caller_number": CALLER, "dtmf_delay_ms": "300", "dtmf_pcap": str(dtmf_pcap("5")),
            "talk_delay_ms": "9000", "speech_pcap": str(caller_speech), "talk_ms": "4000",
        }, scenario="caller_voicemail")  # fmt: skip
        conv_id = await conv_of_call(hub)
        await ended(caller, timeout=40)
        async with asyncio.timeout(20):
            while True:
                items = await timeline(hub, conv_id)
                vm = [i for i in items if i["attachments"]
                      and i["payload"]["metadata"].get("event") == "voicemail"]
                conv = await conversation(hub, conv_id)
                if vm and conv["attributes"].get("callback"):
                    break
                await asyncio.sleep(0.2)
        assert conv["status"] == "queued", conv  # back in the queue as callback work
        assert conv["attributes"]["callback"]["reason"] == "voicemail"
        assert conv["attributes"]["callback"]["number"] == CALLER
        assert "voicemail" in [e["event"] for e in call_events(items)]
        async with hub.client(token=hub.tokens[Role.SUPERVISOR]) as c:
            wav = await c.get(f"/api/media/{vm[0]['attachments'][0]['sha256']}")
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF", wav.text
    path = tmp_path / "vm.wav"
    path.write_bytes(wav.content)
    assert wav_rms(path) > 0.01, "the voicemail in the timeline is silent"


def test_queue_experience_config_is_checked_and_reaches_the_call_flow() -> None:
    good: dict[str, Any] = {"ari_url": "http://127.0.0.1:8088/ari", "ari_user": "u",
                            "ari_password": "p"}  # fmt: skip
    ivr = voice_settings(voice_row({**good, "queue_experience": {
        "announce_s": 30, "announce_queues": {"sales": 10}, "announce_holdtime": False,
        "callback_digit": "2", "voicemail_max_s": 60}})).ivr  # fmt: skip
    assert (ivr.announce_interval("sales"), ivr.announce_interval("other")) == (10.0, 30.0)
    assert ivr.callback_digit == "2" and ivr.voicemail_max_s == 60 and not ivr.announce_holdtime
    assert voice_settings(voice_row(good)).ivr.announce_s == 0  # off unless configured
    cases: list[tuple[Any, str]] = [
        ({"announce_every": 5}, "queue_experience.announce_every"),
        ({"announce_s": -1}, "queue_experience.announce_s"),
        ({"announce_queues": {"sales": "x"}}, "queue_experience.announce_queues.sales"),
        ({"callback_digit": "#"}, "queue_experience.callback_digit"),
        ({"announce_holdtime": "yes"}, "queue_experience.announce_holdtime"),
        ("often", "queue_experience"),
    ]
    for bad, key in cases:
        with pytest.raises(VoiceConfigError) as err:
            voice_settings(voice_row({**good, "queue_experience": bad}))
        assert err.value.key == key, (bad, err.value)
