"""SMS through the real hub: DB-backed channel state, the channel-row factory, delivery
receipts, the segment counter API, the opt-out precheck, and end to end through a real Kannel.

Every test runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.base import ChannelKind, TransientChannelError
from channels.sms import (
    KANNEL_GET_URL_TEMPLATE,
    DeliveryReport,
    DeliveryStatus,
    report_to_inbound,
    twilio_signature,
)
from channels.sms.stores import ALL_CHANNELS, OptOutRecord, SentRecord, StoredPart
from hub.actions.ingest import Ingestor
from hub.actions.log import append
from hub.db.models import ChannelInstance, Interaction, OutboundDelivery
from hub.domain import ActorType, Direction, InteractionKind, Role
from hub.events import Event
from hub.ids import new_id
from hub.settings import Settings
from hub.state import StateStore
from hub.wiring.sms import SmsChannelConfigError, sms_config_from_row
from hub.wiring.sms_stores import db_sms_stores
from tests.channels.sms.conftest import serve
from tests.conftest import Db
from tests.hub.helpers import MemoryMedia, RecordingBus, inbound
from tests.hub.server import running_hub
from tests.servers.kannel import KannelTestbed, free_port

OURS = "+15550001000"
PHONE = "+15551234567"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

# --- DB-backed stores ----------------------------------------------------------------------


async def test_opt_outs_are_durable_newest_wins_and_stopall_covers_every_number(db: Db) -> None:
    stores = db_sms_stores(StateStore(db.sessions), OURS)
    assert not await stores.opt_outs.is_opted_out(OURS, PHONE)
    await stores.opt_outs.record(OptOutRecord(OURS, PHONE, True, "STOP", T0))
    await stores.opt_outs.record(OptOutRecord(OURS, PHONE, False, "START", T0 - timedelta(1)))
    again = db_sms_stores(StateStore(db.sessions), OURS)  # a restarted process
    assert await again.opt_outs.is_opted_out(OURS, PHONE)  # the late, older START lost
    assert not await again.opt_outs.is_opted_out("+15550009999", PHONE)
    await again.opt_outs.record(OptOutRecord(OURS, PHONE, False, "START", T0 + timedelta(1)))
    assert not await again.opt_outs.is_opted_out(OURS, PHONE)
    await again.opt_outs.record(OptOutRecord(ALL_CHANNELS, PHONE, True, "STOPALL", T0))
    assert await again.opt_outs.is_opted_out("+15550009999", PHONE)


async def test_sent_store_finds_by_message_id_and_idempotency_key(db: Db) -> None:
    stores = db_sms_stores(StateStore(db.sessions), OURS)
    rec = SentRecord("mid-1", OURS, PHONE, "conv-1", "interaction-1", 2, datetime.now(UTC))
    await stores.sent.remember(rec)
    assert await stores.sent.by_message_id("mid-1") == rec
    assert await stores.sent.by_idempotency_key(OURS, "interaction-1") == rec
    assert await stores.sent.by_idempotency_key("+15550009999", "interaction-1") is None
    other = db_sms_stores(StateStore(db.sessions), "+15550009999")
    assert await other.sent.by_message_id("mid-1") is None  # scoped to its channel


def _part(seq: int, first_seen: float, text: str = "x", part_id: str = "") -> StoredPart:
    return StoredPart(
        "grp|+1555", seq, 3, part_id or f"p{seq}", PHONE, OURS, text, T0, first_seen, {"smsc": "F"}
    )


async def test_parts_store_first_copy_wins_tombstones_and_expiry(db: Db) -> None:
    parts = db_sms_stores(StateStore(db.sessions), OURS).parts
    now = time.time()
    results = await asyncio.gather(*(parts.add(_part(2, now + i, f"copy{i}")) for i in range(4)))
    assert all(r is not None and len(r) == 1 for r in results)
    [held] = await parts.get("grp|+1555")
    assert held.text in {"copy0", "copy1", "copy2", "copy3"} and held.metadata == {"smsc": "F"}
    held3 = await parts.add(_part(3, now + 10))
    assert held3 is not None and [p.seq for p in held3] == [2, 3]
    assert held3[1].first_seen == held.first_seen  # the group's first sighting is kept
    assert await parts.expired(held.first_seen + 1) == ["grp|+1555"]
    assert await parts.expired(held.first_seen - 1) == []
    popped = await parts.pop("grp|+1555", tombstone_until=now + 600)
    assert [p.seq for p in popped] == [2, 3]
    assert await parts.get("grp|+1555") == () and await parts.expired(now + 999) == []
    assert await parts.add(_part(2, now + 20)) is None  # a late retry of a joined part
    assert await parts.add(_part(1, now + 20, part_id="p-new")) is not None


async def test_nonce_store_claims_once_and_release_allows_a_retry(db: Db) -> None:
    nonces = db_sms_stores(StateStore(db.sessions), OURS).nonces
    now = time.time()
    got = await asyncio.gather(
        *(nonces.claim("sig", expires_at=now + 60, now=now) for _ in range(5))
    )
    assert sorted(got) == [False] * 4 + [True]
    await nonces.release("sig")
    assert await nonces.claim("sig", expires_at=now + 60, now=now)
    assert await nonces.claim("old", expires_at=now - 1, now=now)
    assert await nonces.claim("old", expires_at=now + 60, now=now)  # an expired one is reusable


# --- the channel-row factory ---------------------------------------------------------------

KANNEL_CONFIG: dict[str, Any] = {
    "gateway": "kannel",
    "sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms",
    "username": "hub",
    "password": "pw",
    "dlr_secret": "0123456789abcdef-dlr",
}


def _row(config: dict[str, Any], address: str = "(555) 000-1000") -> ChannelInstance:
    return ChannelInstance(id="ch_1", kind="sms", name="main", address=address, config=config)


def test_row_config_builds_urls_under_the_channel_mount_and_falls_back_to_hub_region() -> None:
    settings = Settings(public_url="https://hub.example.com/", default_region="US")
    built = sms_config_from_row(_row({**KANNEL_CONFIG, "rate_burst": 2}), settings)
    assert built.config.channel_id == OURS and built.config.default_region == "US"
    assert built.config.kannel is not None
    assert built.config.kannel.dlr_url == "https://hub.example.com/channels/sms/main/kannel/dlr"
    assert built.config.kannel.sender == OURS and built.config.rate_burst == 2
    twilio = {
        "gateway": "twilio",
        "account_sid": "AC1",
        "auth_token": "tok",
        "default_region": "GB",
    }
    built = sms_config_from_row(_row(twilio, "+447700900123"), settings)
    assert built.config.twilio is not None and built.config.default_region == "GB"
    assert built.config.twilio.status_callback_url == (
        "https://hub.example.com/channels/sms/main/twilio/status"
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"gateway": "kannel"}, "gateway kannel needs sendsms_url, username, password, dlr_secret"),
        ({**KANNEL_CONFIG, "dlr_secert": "x"}, "config.dlr_secert: Extra inputs are not permitted"),
        ({**KANNEL_CONFIG, "dlr_secret": "short"}, "config.dlr_secret: String should have at"),
        ({"gateway": "smpp"}, "config.gateway: Input should be 'kannel' or 'twilio'"),
        ({**KANNEL_CONFIG, "default_region": "usa"}, "config.default_region: String should"),
    ],
)
def test_invalid_row_config_names_the_channel_and_key(
    config: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SmsChannelConfigError) as info:
        sms_config_from_row(_row(config), Settings())
    assert str(info.value).startswith("sms channel 'main': ") and expected in str(info.value)


def test_an_address_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(SmsChannelConfigError, match="address is not a phone number"):
        sms_config_from_row(_row(KANNEL_CONFIG, "support@example.com"), Settings())


# --- delivery receipts through ingest ------------------------------------------------------


async def _sent_reply(db: Db, ingest: Ingestor, external_id: str, status: str) -> str:
    """A customer message and an agent reply the outbox handed over; returns the interaction."""
    receipt = await ingest(inbound(ChannelKind.SMS, PHONE, f"in-{external_id}", channel_id=OURS))
    async with db.sessions() as s, s.begin():
        row = await append(
            s, receipt.conversation_id, kind=InteractionKind.MESSAGE,
            direction=Direction.OUTBOUND, channel="sms", actor_type=ActorType.AGENT,
            text="on its way", payload={"to": f"phone:{PHONE}"},
        )  # fmt: skip
        s.add(
            OutboundDelivery(
                id=new_id("delivery"),
                interaction_id=row.id,
                channel="sms",
                status=status,
                external_id=external_id if status != "sending" else None,
            )
        )
    return row.id


def _report(message_id: str, status: DeliveryStatus, raw: str, ix_id: str) -> Any:
    report = DeliveryReport(
        "kannel", message_id, status, raw, T0, PHONE, detail="ACK" if raw != "16" else "NACK/0x0b"
    )
    sent = SentRecord(message_id, OURS, PHONE, "conv", ix_id, 1, T0)
    return report_to_inbound(report, channel_id=OURS, sent=sent)


async def _delivery(db: Db, ix_id: str) -> OutboundDelivery:
    async with db.sessions() as s:
        return (
            await s.execute(
                select(OutboundDelivery).where(OutboundDelivery.interaction_id == ix_id)
            )
        ).scalar_one()


async def test_receipts_move_delivery_status_forward_only(db: Db) -> None:
    bus = RecordingBus()
    ingest = Ingestor(db.sessions, bus, MemoryMedia().put)
    ix = await _sent_reply(db, ingest, "mid-a", "sent")
    await ingest(_report("mid-a", DeliveryStatus.DELIVERED, "1", ix))
    assert (await _delivery(db, ix)).status == "delivered"
    status_events = [e for e in bus.seen if e.name == "delivery.status"]
    assert [e.data["status"] for e in status_events] == ["delivered"]
    assert status_events[0].data["interaction_id"] == ix
    await ingest(_report("mid-a", DeliveryStatus.SENT, "8", ix))  # late SMSC ack: no downgrade
    await ingest(_report("mid-a", DeliveryStatus.DELIVERED, "1", ix))  # a gateway retry
    assert (await _delivery(db, ix)).status == "delivered"
    assert [e.name for e in bus.seen].count("delivery.status") == 1
    ix_b = await _sent_reply(db, ingest, "mid-b", "sent")
    await ingest(_report("mid-b", DeliveryStatus.FAILED, "16", ix_b))
    failed = await _delivery(db, ix_b)
    assert failed.status == "failed" and "NACK/0x0b" in (failed.last_error or "")
    async with db.sessions() as s:  # every receipt is in the timeline, once
        events = (
            await s.execute(
                select(func.count()).select_from(Interaction).where(Interaction.kind == "event")
            )
        ).scalar_one()
    assert events == 3


async def test_receipt_for_a_reply_still_being_sent_is_retried_not_lost(db: Db) -> None:
    ingest = Ingestor(db.sessions, RecordingBus(), MemoryMedia().put)
    ix = await _sent_reply(db, ingest, "mid-c", "sending")
    with pytest.raises(TransientChannelError):  # the route answers 503: Kannel retries
        await ingest(_report("mid-c", DeliveryStatus.DELIVERED, "1", ix))
    unknown = DeliveryReport("kannel", "mid-c", DeliveryStatus.SENT, "8", T0, PHONE)
    with pytest.raises(TransientChannelError):  # even before the channel remembered the send
        await ingest(report_to_inbound(unknown, channel_id=OURS, sent=None))
    async with db.sessions() as s, s.begin():
        row = (
            await s.execute(select(OutboundDelivery).where(OutboundDelivery.interaction_id == ix))
        ).scalar_one()
        row.status, row.external_id = "sent", "mid-c"  # what the worker records a moment later
    await ingest(_report("mid-c", DeliveryStatus.DELIVERED, "1", ix))
    assert (await _delivery(db, ix)).status == "delivered"
    stray = DeliveryReport("kannel", "mid-zzz", DeliveryStatus.DELIVERED, "1", T0, PHONE)
    receipt = await ingest(report_to_inbound(stray, channel_id=OURS, sent=None))
    assert receipt.created  # nothing in flight: a receipt matching no reply is just recorded


# --- through the real hub and a real Kannel ------------------------------------------------


class ForwardingProxy:
    """Kannel reaches the hub through this TCP forwarder, as through a reverse proxy.

    Why: the channel's dlr-url and Kannel's get-url must name the hub before either starts,
    while ``running_hub`` binds a port of uvicorn's choosing. ``lose_next_inbound`` forwards the
    next get-url request to the hub, waits for the hub's answer (it answers only after commit)
    and then drops the connection, so Kannel retries a message the hub already stored.
    """

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.lose_next_inbound = False
        self.inbound_requests = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ForwardingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        doomed = asyncio.Event()

        async def upstream() -> None:
            while chunk := await reader.read(65536):
                if b"/kannel/inbound" in chunk:
                    self.inbound_requests += 1
                    if self.lose_next_inbound:
                        self.lose_next_inbound = False
                        doomed.set()
                up_writer.write(chunk)
                await up_writer.drain()

        async def downstream() -> None:
            while chunk := await up_reader.read(65536):
                if doomed.is_set():
                    return  # the hub answered; Kannel never hears it
                writer.write(chunk)
                await writer.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        with contextlib.suppress(OSError):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in (writer, up_writer):
            w.close()


async def _insert_channels(db: Db, testbed: KannelTestbed, base: str) -> None:
    config = {
        "gateway": "kannel",
        "sendsms_url": testbed.sendsms_url,
        "username": testbed.username,
        "password": testbed.password,
        "dlr_secret": "dlr-secret-for-tests",
        "inbound_token": "inbound-secret",
        "callback_base_url": base,
    }
    async with db.sessions() as s, s.begin():
        s.add(ChannelInstance(id=new_id("channel"), kind="sms", name="main", address=OURS,
                              config=config))  # fmt: skip
        s.add(ChannelInstance(id=new_id("channel"), kind="sms", name="broken",
                              address="+15550002000", config={"gateway": "kannel"}))  # fmt: skip


async def _until(probe: Any, timeout: float = 15.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await probe()):
            await asyncio.sleep(0.1)
    return result


@contextlib.asynccontextmanager
async def _hub_with_kannel(
    db: Db, tmp_path: Path
) -> AsyncIterator[tuple[Any, KannelTestbed, ForwardingProxy]]:
    proxy = ForwardingProxy(target_port=0)
    base = f"http://127.0.0.1:{proxy.port}"
    get_url = KANNEL_GET_URL_TEMPLATE.format(base=f"{base}/channels/sms/main/kannel/inbound")
    testbed = KannelTestbed(tmp_path / "kannel", get_url + "&token=inbound-secret")
    await _insert_channels(db, testbed, base)
    async with running_hub(db) as hub:
        proxy.target_port = int(hub.url.rsplit(":", 1)[1])
        async with proxy:
            try:
                await testbed.start()
                yield hub, testbed, proxy
            except BaseException:
                print(testbed.logs())
                raise
            finally:
                await testbed.stop()


async def test_sms_end_to_end_through_kannel_and_the_hub(db: Db, tmp_path: Path) -> None:
    async with _hub_with_kannel(db, tmp_path) as (hub, kannel, proxy):
        seen: list[Event] = []

        async def listen(event: Event) -> None:
            seen.append(event)

        hub.services.bus.subscribe(listen)
        failed = hub.services.extras["channel_host"].failed
        assert "gateway kannel needs sendsms_url" in failed["broken"]  # the other one runs
        sup, agent = hub.client(Role.SUPERVISOR), hub.client(Role.AGENT)

        # phone -> Kannel -> hub; the hub's first answer is lost, Kannel retries: stored once
        proxy.lose_next_inbound = True
        await kannel.smsc.send_text(PHONE, OURS, "Hello, my parcel never arrived")

        async def queued() -> list[Any]:
            r = await sup.get("/api/conversations", params={"channel": "sms"})
            return list(r.json()["items"])

        [conv] = await _until(queued)
        assert conv["status"] == "queued"
        await _until(lambda: _ready(proxy.inbound_requests >= 2))
        timeline = f"/api/conversations/{conv['id']}/interactions"
        items = (await sup.get(timeline)).json()["items"]
        assert [(i["kind"], i["text"]) for i in items] == [
            ("message", "Hello, my parcel never arrived")
        ]
        assert items[0]["payload"]["sender"] == f"phone:{PHONE}"

        # a supervisor hands it to an agent, who checks the counter and replies
        agent_id = hub.agent_ids["agent@t.test"]
        r = await sup.post(f"/api/conversations/{conv['id']}/transfer", json={"agent_id": agent_id})
        assert r.status_code == 200, r.text
        text = "Sorry! Ana here, it ships today. ¿Algo más?"
        counter = (await agent.get("/api/sms/segments", params={"text": text})).json()
        assert counter == {"encoding": "ucs2", "segments": 1, "chars_left": 70 - len(text),
                           "units": len(text), "per_segment": 70}  # fmt: skip
        r = await agent.post(f"/api/conversations/{conv['id']}/messages", json={"text": text})
        assert r.status_code == 201, r.text
        reply_id = r.json()["id"]
        line = await kannel.smsc.next_message(timeout=15)
        assert line.receiver == PHONE and line.text == text and line.kind == "ucs-2"

        # DLRs (SMSC ack, then handset) -> the timeline shows delivered
        async def delivered() -> bool:
            items = (await agent.get(timeline)).json()["items"]
            reply = next(i for i in items if i["id"] == reply_id)
            return bool(reply.get("delivery", {}).get("status") == "delivered")

        await _until(delivered)
        statuses = [e.data["status"] for e in seen if e.name == "delivery.status"]
        assert statuses[-1] == "delivered" and "sent" in statuses

        # STOP from the phone -> the next reply is refused at once, nothing queued or sent
        await kannel.smsc.send_text(PHONE, OURS, "STOP")

        async def stopped() -> bool:
            items = (await agent.get(timeline)).json()["items"]
            return any(i["payload"].get("metadata", {}).get("keyword") == "STOP" for i in items)

        await _until(stopped)
        before = len((await agent.get(timeline)).json()["items"])
        r = await agent.post(f"/api/conversations/{conv['id']}/messages", json={"text": "one more"})
        assert r.status_code == 409 and r.json()["code"] == "sms_opted_out", r.text
        assert "opted out" in r.json()["message"]
        assert len((await agent.get(timeline)).json()["items"]) == before
        await asyncio.sleep(0.5)
        assert kannel.smsc.received.empty()
        async with db.sessions() as s:
            count = (await s.execute(select(func.count()).select_from(OutboundDelivery))).scalar()
        assert count == 1
        # the counter is for agents and up
        async with hub.client(Role.QA) as qa:
            assert (await qa.get("/api/sms/segments", params={"text": "x"})).status_code == 403
        await sup.aclose()
        await agent.aclose()
    async with running_hub(db) as hub, hub.client(Role.AGENT) as agent:  # restarted: still out
        r = await agent.post(f"/api/conversations/{conv['id']}/messages", json={"text": "hi?"})
        assert r.status_code == 409 and r.json()["code"] == "sms_opted_out", r.text


async def _ready(value: bool) -> bool:
    return value


# --- Twilio-compatible webhooks through the hub, outbound to a LOCAL STAND-IN provider -------

TW_SID, TW_TOKEN, TW_NUMBER = "AC" + "e" * 32, "stand-in-auth-token", "+447700900123"


async def _signed_post(client: Any, url: str, form: dict[str, str], token: str = TW_TOKEN) -> Any:
    signature = twilio_signature(token, url, form.items())
    return await client.post(url, data=form, headers={"X-Twilio-Signature": signature})


async def test_twilio_webhooks_via_hub_and_reply_to_local_standin_provider(db: Db) -> None:
    sent: list[dict[str, str]] = []

    async def messages(request: Request) -> Response:
        sent.append(dict(parse_qsl((await request.body()).decode())))
        return JSONResponse({"sid": f"SM{len(sent):032d}", "status": "queued"}, status_code=201)

    standin = Starlette(routes=[Route(f"/2010-04-01/Accounts/{TW_SID}/Messages.json", messages,
                                      methods=["POST"])])  # fmt: skip
    async with serve(standin) as provider:
        config = {"gateway": "twilio", "account_sid": TW_SID, "auth_token": TW_TOKEN,
                  "base_url": provider.base, "default_region": "GB"}  # fmt: skip
        async with db.sessions() as s, s.begin():
            s.add(ChannelInstance(id=new_id("channel"), kind="sms", name="cloud",
                                  address=TW_NUMBER, config=config))  # fmt: skip
        async with running_hub(db) as hub, hub.client() as anon:
            sup, agent = hub.client(Role.SUPERVISOR), hub.client(Role.AGENT)
            inbound_url = f"{hub.url}/channels/sms/cloud/twilio/inbound"
            form = {"AccountSid": TW_SID, "MessageSid": "SM" + "1" * 32, "From": "07700 900456",
                    "To": TW_NUMBER, "Body": "Is my table booked?", "NumMedia": "0"}  # fmt: skip
            r = await _signed_post(anon, inbound_url, form)
            assert r.status_code == 200 and "<Response>" in r.text, r.text
            replay = await _signed_post(anon, inbound_url, form)
            assert replay.status_code == 401 and replay.json()["code"] == "sms_replayed"
            forged = await _signed_post(anon, inbound_url, {**form, "Body": "x"}, "wrong-token")
            assert forged.status_code == 401 and forged.json()["code"] == "sms_bad_signature"
            [conv] = (await sup.get("/api/conversations", params={"channel": "sms"})).json()[
                "items"
            ]
            agent_id = hub.agent_ids["agent@t.test"]
            await sup.post(f"/api/conversations/{conv['id']}/transfer", json={"agent_id": agent_id})
            for text, expected in [
                ("€" * 80, ("gsm7", 1, 0)),  # extension characters cost two septets
                ("a" * 161, ("gsm7", 2, 153 - 8)),
                ("👍" * 35, ("ucs2", 1, 0)),  # an emoji is two UTF-16 units
            ]:
                got = (await agent.get("/api/sms/segments", params={"text": text})).json()
                assert (got["encoding"], got["segments"], got["chars_left"]) == expected
            r = await agent.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Yes"})
            assert r.status_code == 201, r.text
            await _until(lambda: _ready(bool(sent)))
            assert sent[0]["To"] == "+447700900456" and sent[0]["From"] == TW_NUMBER
            assert sent[0]["Body"] == "Yes"
            assert sent[0]["StatusCallback"].endswith("/channels/sms/cloud/twilio/status")
            status_url = f"{hub.url}/channels/sms/cloud/twilio/status"
            callback = {"AccountSid": TW_SID, "MessageSid": f"SM{1:032d}",
                        "MessageStatus": "delivered", "To": "+447700900456"}  # fmt: skip
            timeline = f"/api/conversations/{conv['id']}/interactions"

            async def accepted() -> bool:  # 503 while the outbox is still recording the send
                return bool((await _signed_post(anon, status_url, callback)).status_code == 200)

            await _until(accepted)
            items = (await agent.get(timeline)).json()["items"]
            [reply] = [i for i in items if i["direction"] == "outbound"]
            assert reply["delivery"]["status"] == "delivered"
            assert [i["payload"]["metadata"]["status"] for i in items if i["kind"] == "event"] == [
                "delivered"
            ]
            await sup.aclose()
            await agent.aclose()
