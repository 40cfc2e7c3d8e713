"""Agent reply attachments through the real hub: upload limits and tokens, then the file on
each channel: web chat (socket.io to the visitor), email (MIME over real SMTP), fax (pages to the
email-to-fax gateway over real SMTP), SMS via Kannel (refused before anything is queued).

Every test runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import asyncio
import email
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from channels.base import ChannelKind
from hub.config import apply_config, parse_config
from hub.db.models import AttachmentRecord, Interaction, OutboundDelivery
from hub.domain import Role
from hub.settings import Settings, SettingsError
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_dispatch import AgentSocket, ready
from tests.hub.test_sms_hub import OURS, PHONE, _hub_with_kannel, _until
from tests.hub.test_webchat_hub import CENTER as WEBCHAT_CENTER
from tests.hub.test_webchat_hub import Visitor
from tests.servers.dovecot import start_dovecot
from tests.servers.smtpd_server import smtp_server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_attachment_limits_come_from_settings() -> None:
    s = Settings.from_env(
        {"HUB_REPLY_ATTACHMENT_TYPES": " Image/PNG, application/pdf ",
         "HUB_REPLY_ATTACHMENT_MAX_BYTES": "2048"}
    )  # fmt: skip
    assert s.reply_attachment_type_set == {"image/png", "application/pdf"}
    assert s.reply_attachment_max_bytes == 2048
    with pytest.raises(SettingsError, match="HUB_REPLY_ATTACHMENT_TYPES"):
        Settings.from_env({"HUB_REPLY_ATTACHMENT_TYPES": "png, pdf"})
    with pytest.raises(SettingsError, match="HUB_REPLY_ATTACHMENT_MAX_BYTES"):
        Settings.from_env({"HUB_REPLY_ATTACHMENT_MAX_BYTES": "ten"})


async def upload(c: Any, name: str, data: bytes, content_type: str) -> Any:
    return await c.post(
        "/api/attachments",
        params={"filename": name},
        content=data,
        headers={"content-type": content_type},
    )


async def token_for(c: Any, name: str, data: bytes, content_type: str) -> str:
    r = await upload(c, name, data, content_type)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def assign(hub: RunningHub, conv_id: str) -> None:
    async with hub.client(Role.SUPERVISOR) as sup:
        r = await sup.post(
            f"/api/conversations/{conv_id}/transfer",
            json={"agent_id": hub.agent_ids["agent@t.test"]},
        )
        assert r.status_code == 200, r.text


async def test_upload_limits_tokens_and_timeline(db: Db) -> None:
    async with running_hub(db, reply_attachment_max_bytes=4096) as hub:
        receipt = await hub.services.ingestor(
            inbound(ChannelKind.SMS, "+14155550100", "sms-1", "Photo of the damage?")
        )
        conv = receipt.conversation_id
        await assign(hub, conv)
        async with hub.client(Role.AGENT) as agent, hub.client(Role.SUPERVISOR) as sup:
            r = await upload(agent, "x.html", b"<script>", "text/html")
            assert r.status_code == 415 and r.json()["code"] == "attachment_type_not_allowed"
            assert "image/png" in r.json()["data"]["allowed"]
            r = await upload(agent, "big.png", PNG + bytes(5000), "image/png")
            assert r.status_code == 413 and r.json()["code"] == "attachment_too_large"
            assert r.json()["data"]["limit"] == 4096
            r = await upload(agent, "fake.png", b"<html>not a png</html>", "image/png")
            assert r.status_code == 415 and r.json()["code"] == "attachment_type_mismatch"
            r = await upload(agent, "empty.txt", b"", "text/plain")
            assert r.status_code == 422 and r.json()["code"] == "empty_attachment"
            r = await agent.post("/api/attachments", content=PNG)
            assert r.status_code == 422 and r.json()["data"]["errors"][0]["field"] == "filename"
            async with hub.client(Role.QA) as qa:
                assert (await upload(qa, "a.png", PNG, "image/png")).status_code == 403
            ok = await upload(agent, "../../etc/damage\x00.png", PNG, "image/png")
            assert ok.status_code == 201, ok.text
            up = ok.json()
            assert up["filename"] == "damage.png" and up["size"] == len(PNG)
            # an unreferenced upload is not readable by agents (404 hides its existence)
            assert (await agent.get(f"/api/media/{up['sha256']}")).status_code == 404

            # tokens: tampered, someone else's, garbage -> 422 naming the list index
            payload, sig = up["token"].split(".")
            forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig
            sup_token = await token_for(sup, "s.png", PNG, "image/png")
            for bad, why in [(forged, "not an upload token"), (sup_token, "someone else"),
                             ("junk", "not an upload token")]:  # fmt: skip
                r = await agent.post(
                    f"/api/conversations/{conv}/messages",
                    json={"text": "see attached", "attachments": [bad]},
                )
                assert r.status_code == 422 and r.json()["code"] == "invalid_attachment", r.text
                assert why in r.json()["message"] and r.json()["data"]["field"] == "attachments.0"
            r = await agent.post(f"/api/conversations/{conv}/messages", json={"text": ""})
            assert r.status_code == 422  # neither text nor a file

            # no SMS channel runs here, so the reply waits in the outbox with its file
            r = await agent.post(
                f"/api/conversations/{conv}/messages",
                json={"attachments": [up["token"]], "client_id": "c-1"},
            )
            assert r.status_code == 201, r.text
            [att] = r.json()["attachments"]
            assert (att["filename"], att["content_type"], att["size"], att["sha256"]) == (
                "damage.png", "image/png", len(PNG), up["sha256"]
            )  # fmt: skip
            again = await agent.post(
                f"/api/conversations/{conv}/messages",
                json={"attachments": [up["token"]], "client_id": "c-1"},
            )
            assert again.json()["id"] == r.json()["id"]  # idempotent: one reply, one file
            items = (await agent.get(f"/api/conversations/{conv}/interactions")).json()["items"]
            sent = [i for i in items if i["direction"] == "outbound"]
            assert [a["filename"] for a in sent[0]["attachments"]] == ["damage.png"]
            media = await agent.get(f"/api/media/{up['sha256']}")
            assert media.status_code == 200 and media.content == PNG
    async with db.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(AttachmentRecord))).scalar() == 1


async def test_webchat_visitor_receives_the_file(db: Db) -> None:
    await apply_config(db.sessions, parse_config(WEBCHAT_CENTER), env={})
    async with running_hub(db) as hub:
        tok = hub.tokens[Role.AGENT]
        async with AgentSocket(hub, tok) as agent:
            await ready(hub, tok)
            visitor = Visitor(hub)
            await visitor.connect()
            ack = await visitor.call("message", {"text": "Which form?", "client_id": "c1"})
            offer = await agent.next("offer")
            async with hub.client(token=tok) as c:
                assert (await c.post(f"/api/offers/{offer['offer_id']}/accept")).status_code == 200
                token = await token_for(c, "form.pdf", PDF, "application/pdf")
                r = await c.post(
                    f"/api/conversations/{ack['conversation_id']}/messages",
                    json={"text": "This one:", "attachments": [token]},
                )
                assert r.status_code == 201, r.text
            reply = await visitor.next("message")
            assert reply["text"] == "This one:" and reply["id"] == r.json()["id"]
            [f] = reply["attachments"]
            assert (f["name"], f["type"], f["size"], f["data"]) == (
                "form.pdf", "application/pdf", len(PDF), PDF
            )  # fmt: skip
            await visitor.sio.disconnect()


def _parts(msg: Message) -> list[tuple[str | None, str, bytes]]:
    out = []
    for part in msg.walk():
        if part.get_content_disposition() == "attachment":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            out.append((part.get_filename(), part.get_content_type(), data))
    return out


async def test_email_and_fax_replies_carry_the_files(db: Db) -> None:
    imap = start_dovecot()
    try:
        with smtp_server() as smtp:
            mailbox, faxbox = imap.add_user(), imap.add_user()

            def mailbox_config(user: str) -> str:
                return f"""
      imap_host: {imap.host}
      imap_port: {imap.port}
      imap_security: none
      allow_plaintext_auth: true
      password: "{imap.users[user]}"
      poll_interval_s: 0.5
      smtp_host: {smtp.host}
      smtp_port: {smtp.port}
      smtp_security: none
      smtp_auth: false"""

            center = f"""
channels:
  - kind: email
    name: support
    address: "{mailbox}"
    config:{mailbox_config(mailbox)}
  - kind: fax
    name: fax
    address: "{faxbox}"
    config:{mailbox_config(faxbox)}
      send_address: "{{number}}@fax.example.net"
"""
            await apply_config(db.sessions, parse_config(center), env={})
            async with running_hub(db) as hub:
                assert hub.services.extras["channel_host"].status()["failed"] == {}
                mail_conv = (
                    await hub.services.ingestor(
                        inbound(ChannelKind.EMAIL, "carla@example.org", "<m1@example.org>",
                                "Send me the invoice", channel_id=mailbox)
                    )
                ).conversation_id  # fmt: skip
                fax_conv = (
                    await hub.services.ingestor(
                        inbound(ChannelKind.FAX, "+14155550123", "fax-1", "Order form",
                                channel_id=faxbox)
                    )
                ).conversation_id  # fmt: skip
                for conv in (mail_conv, fax_conv):
                    await assign(hub, conv)
                async with hub.client(Role.AGENT) as agent:
                    pdf = await token_for(agent, "invoice.pdf", PDF, "application/pdf")
                    png = await token_for(agent, "logo.png", PNG, "image/png")
                    r = await agent.post(
                        f"/api/conversations/{mail_conv}/messages",
                        json={"text": "Invoice attached.", "attachments": [pdf, png]},
                    )
                    assert r.status_code == 201, r.text
                    # a fax carries documents only: a PNG is refused before anything is queued
                    r = await agent.post(
                        f"/api/conversations/{fax_conv}/messages",
                        json={"text": "Signed form", "attachments": [png]},
                    )
                    assert r.status_code == 409, r.text
                    assert r.json()["code"] == "fax_attachment_unsupported"
                    assert "logo.png" in r.json()["message"]
                    r = await agent.post(
                        f"/api/conversations/{fax_conv}/messages",
                        json={"text": "Signed form", "attachments": [pdf]},
                    )
                    assert r.status_code == 201, r.text
                    await _until(lambda: _ready(len(smtp.handler.messages) >= 2), 20)
                by_rcpt = {m.rcpt_tos[0]: m for m in smtp.handler.messages}
                mail = email.message_from_bytes(by_rcpt["carla@example.org"].content)
                assert _parts(mail) == [
                    ("invoice.pdf", "application/pdf", PDF),
                    ("logo.png", "image/png", PNG),
                ]
                fax = email.message_from_bytes(by_rcpt["14155550123@fax.example.net"].content)
                parts = _parts(fax)
                assert [(n, t) for n, t, _ in parts] == [
                    ("fax.pdf", "application/pdf"),
                    ("invoice.pdf", "application/pdf"),
                ]
                assert parts[1][2] == PDF
    finally:
        imap.stop()


async def _ready(value: bool) -> bool:
    return value


async def test_sms_attachment_refused_before_anything_is_queued(db: Db, tmp_path: Path) -> None:
    async with _hub_with_kannel(db, tmp_path) as (hub, kannel, _proxy):
        await kannel.smsc.send_text(PHONE, OURS, "Can you send a photo?")

        async def queued() -> list[Any]:
            async with hub.client(Role.SUPERVISOR) as sup:
                r = await sup.get("/api/conversations", params={"channel": "sms"})
            return list(r.json()["items"])

        [conv] = await _until(queued)
        await assign(hub, conv["id"])
        async with hub.client(Role.AGENT) as agent:
            png = await token_for(agent, "photo.png", PNG, "image/png")
            r = await agent.post(
                f"/api/conversations/{conv['id']}/messages",
                json={"text": "Here it is", "attachments": [png]},
            )
            assert r.status_code == 409 and r.json()["code"] == "sms_attachments_unsupported"
            items = (await agent.get(f"/api/conversations/{conv['id']}/interactions")).json()
            assert [i["direction"] for i in items["items"] if i["kind"] == "message"] == [
                "inbound"
            ]
        await asyncio.sleep(0.5)
        assert kannel.smsc.received.empty()
        async with db.sessions() as s:
            queued = select(func.count()).select_from(OutboundDelivery)
            assert (await s.execute(queued)).scalar() == 0
            outbound = select(func.count()).select_from(Interaction).where(
                Interaction.direction == "outbound"
            )
            assert (await s.execute(outbound)).scalar() == 0
