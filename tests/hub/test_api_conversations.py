"""The agent's day through the real API and socket.io: queue, transfer, reply, note, resolve."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from channels.base import ChannelKind, Outbound, SendResult, TransientChannelError
from hub.domain import Role
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import agent_socket, received, running_hub


class OutboxChannel:
    """A stand-in channel for testing the delivery worker's own logic (retries, status, threading
    refs); it fails the first N sends on request. The real adapters are tested end to end through
    the hub against their servers (test_sms_hub, test_email_hub, test_webchat_hub,
    test_voice_hub)."""

    kind = ChannelKind.SMS
    channel_id = "+15550001111"

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[Outbound] = []
        self.fail_first = fail_first

    async def run(self, sink: Any) -> None:  # receives nothing in these tests
        await asyncio.Event().wait()

    async def send(self, outbound: Outbound) -> SendResult:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise TransientChannelError("gateway busy")
        self.sent.append(outbound)
        return SendResult(external_id=f"sms-out-{len(self.sent)}")


async def wait_for(pred: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_reply_flow_end_to_end(db: Db) -> None:
    channel = OutboxChannel()
    async with running_hub(db, channels={"sms": channel}) as hub:
        receipt = await hub.services.ingestor(
            inbound(ChannelKind.SMS, "+14155550100", "sms-in-1", "My order is late")
        )
        conv_id = receipt.conversation_id
        agent_id = hub.agent_ids["agent@t.test"]
        async with hub.client(Role.AGENT) as agent, hub.client(Role.SUPERVISOR) as sup:
            page = (await agent.get("/api/conversations", params={"status": "queued"})).json()
            assert [c["id"] for c in page["items"]] == [conv_id]
            # an agent who is not the assignee may not reply
            r = await agent.post(f"/api/conversations/{conv_id}/messages", json={"text": "hi"})
            assert r.status_code == 403 and r.json()["code"] == "not_assignee"
            r = await sup.post(
                f"/api/conversations/{conv_id}/transfer",
                json={"agent_id": agent_id, "note": "VIP, handle with care"},
            )
            assert r.status_code == 200, r.text
            mine = (await agent.get("/api/conversations", params={"assignee": "me"})).json()
            assert [c["status"] for c in mine["items"]] == ["assigned"]
            body = {"text": "Sorry! It ships today.", "client_id": "c-1"}
            r1 = await agent.post(f"/api/conversations/{conv_id}/messages", json=body)
            r2 = await agent.post(f"/api/conversations/{conv_id}/messages", json=body)
            assert r1.status_code == 201 and r1.json()["id"] == r2.json()["id"]  # idempotent
            await wait_for(lambda: _sent(channel))
            assert [o.text for o in channel.sent] == ["Sorry! It ships today."]
            assert channel.sent[0].to.value == "+14155550100"
            await agent.post(f"/api/conversations/{conv_id}/notes", json={"text": "called twice"})
            timeline = (await agent.get(f"/api/conversations/{conv_id}/interactions")).json()
            kinds = [i["kind"] for i in timeline["items"]]
            assert kinds == ["message", "transfer", "message", "note"]
            assert timeline["items"][2]["delivery"]["status"] == "sent"
            assert timeline["items"][1]["payload"]["to"]["agent_id"] == agent_id
            assert (await agent.post(f"/api/conversations/{conv_id}/resolve")).status_code == 200
            again = await agent.post(f"/api/conversations/{conv_id}/resolve")
            assert again.status_code == 409
            # the customer answers the sent SMS: threaded back and the case reopens
            back = await hub.services.ingestor(
                inbound(
                    ChannelKind.SMS,
                    "+14155550100",
                    "sms-in-2",
                    "thanks",
                    thread_refs=("sms-out-1",),
                )
            )
            assert back.conversation_id == conv_id
            conv = (await sup.get(f"/api/conversations/{conv_id}")).json()
            assert conv["status"] == "queued" and conv["assignee_id"] is None


async def _sent(channel: OutboxChannel) -> bool:
    return bool(channel.sent)


async def test_transient_send_failure_is_retried_and_visible(db: Db) -> None:
    channel = OutboxChannel(fail_first=1)
    async with running_hub(db, channels={"sms": channel}) as hub:
        receipt = await hub.services.ingestor(inbound(ChannelKind.SMS, "+14155550101", "x1"))
        async with hub.client(Role.SUPERVISOR) as sup:
            conv_id = receipt.conversation_id
            await sup.post(
                f"/api/conversations/{conv_id}/transfer",
                json={"agent_id": hub.agent_ids["agent@t.test"]},
            )
            await sup.post(f"/api/conversations/{conv_id}/messages", json={"text": "retry me"})
            delivery = hub.services.extras["delivery"]

            async def pending_with_error() -> bool:
                items = (await sup.get(f"/api/conversations/{conv_id}/interactions")).json()
                d = items["items"][-1].get("delivery", {})
                return d.get("status") == "pending" and "gateway busy" in (d.get("error") or "")

            await wait_for(pending_with_error)
            # make the retry due now instead of after the 5 s backoff
            from sqlalchemy import update

            from hub.db.base import utcnow
            from hub.db.models import OutboundDelivery

            async with db.sessions() as s, s.begin():
                await s.execute(update(OutboundDelivery).values(next_attempt_at=utcnow()))
            await delivery.drain()
            assert [o.text for o in channel.sent] == ["retry me"]


async def test_contact_history_across_channels_and_merge(db: Db) -> None:
    async with running_hub(db) as hub:
        ing = hub.services.ingestor
        call = await ing(inbound(ChannelKind.VOICE, "+14155550123", "call-9"))
        sms = await ing(inbound(ChannelKind.SMS, "+14155550123", "sms-9"))
        mail = await ing(
            inbound(ChannelKind.EMAIL, "dora@example.com", "<m9@x>", sender_name="Dora")
        )
        assert call.contact_id == sms.contact_id != mail.contact_id
        async with hub.client(Role.AGENT) as agent, hub.client(Role.SUPERVISOR) as sup:
            c = (await agent.get(f"/api/contacts/{call.contact_id}")).json()
            assert {h["channel"] for h in c["history"]} == {"voice", "sms"}
            r = await agent.post(
                f"/api/contacts/{call.contact_id}/merge", json={"other_id": mail.contact_id}
            )
            assert r.status_code == 403  # merging is for supervisors
            merged = (
                await sup.post(
                    f"/api/contacts/{call.contact_id}/merge", json={"other_id": mail.contact_id}
                )
            ).json()
            assert {a["value"] for a in merged["addresses"]} == {"+14155550123", "dora@example.com"}
            full = (await agent.get(f"/api/contacts/{call.contact_id}")).json()
            assert {h["channel"] for h in full["history"]} == {"voice", "sms", "email"}
            patched = (
                await agent.patch(
                    f"/api/contacts/{call.contact_id}", json={"attributes": {"vip": True}}
                )
            ).json()
            assert patched["attributes"]["vip"] is True
        # a new mail from the merged address lands on the surviving contact
        later = await ing(inbound(ChannelKind.EMAIL, "dora@example.com", "<m10@x>"))
        assert later.contact_id == call.contact_id


async def test_agent_socket_gets_pushes_and_needs_a_token(db: Db) -> None:
    async with running_hub(db) as hub:
        anon = socketio.AsyncClient()
        try:
            await anon.connect(
                hub.url, namespaces=["/agent"], transports=["websocket"], wait_timeout=5
            )
            raise AssertionError("connected without a token")
        except socketio.exceptions.ConnectionError:
            pass
        finally:
            await anon.disconnect()
        names = ("hello", "interaction.created", "conversation.queued")
        async with agent_socket(hub.url, hub.tokens[Role.AGENT], names) as (client, got):
            name, hello = await asyncio.wait_for(got.get(), 5)
            assert name == "hello" and hello["role"] == "agent"
            receipt = await hub.services.ingestor(
                inbound(ChannelKind.WEBCHAT, "visitor-abc123", "w-1", "hello there")
            )
            seen = await received(got, 2)
            assert seen["interaction.created"]["text"] == "hello there"
            assert seen["conversation.queued"]["id"] == receipt.conversation_id
            ack = await client.call(
                "join", {"conversation_id": receipt.conversation_id}, namespace="/agent", timeout=5
            )
            assert ack == {"ok": True}
            bad = await client.call("join", {"nope": 1}, namespace="/agent", timeout=5)
            assert bad["error"]["code"] == "invalid_payload"


async def test_agent_socket_refuses_cookie_from_foreign_origin(db: Db) -> None:
    async with running_hub(db) as hub:
        cookie = {"Cookie": f"contacthub_session={hub.tokens[Role.AGENT]}"}
        evil = socketio.AsyncClient()
        try:
            await evil.connect(
                hub.url,
                namespaces=["/agent"],
                transports=["websocket"],
                headers={**cookie, "Origin": "https://evil.example"},
                wait_timeout=5,
            )
            raise AssertionError("a foreign page opened an agent socket with the cookie")
        except socketio.exceptions.ConnectionError:
            pass
        finally:
            await evil.disconnect()
        own = socketio.AsyncClient()
        await own.connect(
            hub.url,
            namespaces=["/agent"],
            transports=["websocket"],
            headers={**cookie, "Origin": hub.url},
            wait_timeout=5,
        )
        assert own.connected
        await own.disconnect()


async def test_api_only_process_runs_no_router_and_says_so(db: Db) -> None:
    async with running_hub(db, dispatcher=False, run_channels=False) as hub:
        assert "dispatcher" not in hub.services.extras
        async with hub.client(Role.AGENT) as agent:
            r = await agent.post("/api/offers/of_x/accept")
        assert r.status_code == 503 and r.json()["code"] == "routing_unavailable"
