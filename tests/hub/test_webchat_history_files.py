"""Files in the widget's history through the real hub: after a reconnect the visitor's history
lists both sides' files as signed links, the links serve the exact bytes (whole and by Range)
with safe headers, and forged, expired, other-visitor and staff-only links are refused.

Runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select

from hub.config import apply_config, parse_config
from hub.db.models import AttachmentRecord, Interaction, MediaAccess
from hub.domain import ActorType, Direction, InteractionKind, Role
from hub.ids import new_id
from hub.visitor_links import FileClaims, expiry, file_url
from recorder.media import MediaStore
from tests.conftest import Db
from tests.hub.server import RunningHub, running_hub
from tests.hub.test_dispatch import AgentSocket, ready
from tests.hub.test_reply_attachments import PDF, PNG, token_for
from tests.hub.test_webchat_hub import Visitor

SHOP = "https://shop.example"
CENTER = f"""
skills: [english]
queues:
  - name: chat
    required_skills: [{{skill: english, min_level: 1}}]
channels:
  - kind: webchat
    name: website
    address: site-key-123
    queue: chat
    config:
      title: Acme support
      allowed_origins: ["{SHOP}"]
agents:
  - email: agent@t.test
    name: Agent
    skills: {{english: 3}}
    capacity: {{webchat: 3}}
"""
VISITOR_PNG = PNG + b"visitor's own photo"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{urlencode({**_query(url), **changes})}"


async def _staff_only_file(hub: RunningHub, conv_id: str, kind: InteractionKind) -> str:
    """A note's or a call recording's file in the visitor's own conversation (staff eyes only);
    returns its attachment id."""
    media = hub.services.extras["media"]
    assert isinstance(media, MediaStore)
    data = WAV if kind is InteractionKind.RECORDING else PDF + b"internal"
    info = await media.put(data, "audio/wav" if data is WAV else "application/pdf")
    async with hub.services.sessions() as s, s.begin():
        ix = Interaction(
            id=new_id("interaction"),
            conversation_id=conv_id,
            kind=kind.value,
            direction=Direction.INTERNAL.value,
            channel="webchat",
            actor_type=ActorType.AGENT.value,
            text="staff only",
            seq=1000 + len(kind.value),
        )
        s.add(ix)
        att = AttachmentRecord(
            id=new_id("attachment"),
            interaction_id=ix.id,
            filename="internal.bin",
            content_type="audio/wav" if data is WAV else "application/pdf",
            size=len(data),
            sha256=info.key,
        )
        s.add(att)
    return att.id


async def _chat_with_files(hub: RunningHub) -> tuple[Visitor, dict[str, Any], dict[str, Any]]:
    """A visitor sends a photo, the agent answers with a PDF and a PNG; returns the visitor (not
    connected any more), its session and the message ack."""
    tok = hub.tokens[Role.AGENT]
    async with AgentSocket(hub, tok) as agent:
        await ready(hub, tok)
        visitor = Visitor(hub)
        session = await visitor.connect()
        ack = await visitor.call(
            "message",
            {"text": "The damage:", "client_id": "c1",
             "attachments": [{"name": "damage.png", "type": "image/png", "data": VISITOR_PNG}]},
        )  # fmt: skip
        assert "error" not in ack, ack
        offer = await agent.next("offer")
        async with hub.client(token=tok) as c:
            assert (await c.post(f"/api/offers/{offer['offer_id']}/accept")).status_code == 200
            files = [
                await token_for(c, "form.pdf", PDF, "application/pdf"),
                await token_for(c, "label.png", PNG, "image/png"),
            ]
            r = await c.post(
                f"/api/conversations/{ack['conversation_id']}/messages",
                json={"text": "Fill this in:", "attachments": files},
            )
            assert r.status_code == 201, r.text
        live = await visitor.next("message")
        assert [f["name"] for f in live["attachments"]] == ["form.pdf", "label.png"]
        await visitor.sio.disconnect()
    return visitor, session, ack


async def test_history_after_reconnect_serves_both_sides_files(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    await apply_config(db.sessions, parse_config(CENTER), env={})
    async with running_hub(db) as hub:
        _, session, ack = await _chat_with_files(hub)
        back = Visitor(hub, session["visitor_token"])
        assert (await back.connect())["resumed"]
        hist = (await back.call("history", {}))["messages"]
        await back.sio.disconnect()
        assert [m["text"] for m in hist] == ["The damage:", "Fill this in:"]
        mine, theirs = hist[0]["attachments"], hist[1]["attachments"]
        assert [(f["name"], f["type"], f["size"]) for f in mine] == [
            ("damage.png", "image/png", len(VISITOR_PNG))
        ]
        assert [(f["name"], f["type"], f["size"]) for f in theirs] == [
            ("form.pdf", "application/pdf", len(PDF)),
            ("label.png", "image/png", len(PNG)),
        ]
        assert all("data" not in f and f["url"].startswith("/widget/files/") for f in mine + theirs)
        assert _query(mine[0]["url"])["c"] == ack["conversation_id"]
        assert int(_query(mine[0]["url"])["e"]) >= time.time() + 3500

        caplog.set_level(logging.INFO, logger="hub.visitor_media")
        async with httpx.AsyncClient(base_url=hub.url, timeout=10) as web:
            photo = await web.get(mine[0]["url"])
            assert photo.status_code == 200 and photo.content == VISITOR_PNG
            assert photo.headers["content-type"] == "image/png"
            assert photo.headers["content-disposition"].startswith("inline;")
            assert photo.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in photo.headers["content-security-policy"]
            assert "access-control-allow-origin" not in photo.headers  # no Origin, no CORS
            form = await web.get(theirs[0]["url"])
            assert form.status_code == 200 and form.content == PDF
            assert form.headers["content-type"] == "application/pdf"
            assert form.headers["content-disposition"] == 'attachment; filename="form.pdf"'
            label = await web.get(theirs[1]["url"], headers={"Origin": SHOP})
            assert label.content == PNG and label.headers["access-control-allow-origin"] == SHOP
            assert label.headers["vary"] == "Origin"
            part = await web.get(theirs[0]["url"], headers={"Range": "bytes=5-14"})
            assert part.status_code == 206 and part.content == PDF[5:15]
            assert part.headers["content-range"] == f"bytes 5-14/{len(PDF)}"
            head = await web.head(theirs[0]["url"])
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(PDF))
            beyond = await web.get(theirs[0]["url"], headers={"Range": "bytes=9999-"})
            assert beyond.status_code == 416
            pre = await web.options(
                theirs[1]["url"],
                headers={"Origin": SHOP, "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": "range"},
            )  # fmt: skip
            assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == SHOP
            assert "Range" in pre.headers["access-control-allow-headers"]
            other = await web.get(theirs[1]["url"], headers={"Origin": "https://evil.example"})
            assert other.status_code == 403 and other.json()["code"] == "origin_not_allowed"
            assert "access-control-allow-origin" not in other.headers
        # a reload within the same window gets the same URL (the browser's cache applies)
        again = Visitor(hub, session["visitor_token"])
        await again.connect()
        assert (await again.call("history", {}))["messages"][1]["attachments"] == theirs
        await again.sio.disconnect()
    async with db.sessions() as s:
        audit = list((await s.execute(select(MediaAccess))).scalars())
    assert sorted(a.status for a in audit) == [200, 200, 200, 200, 206, 416]
    assert all(a.user_id is None for a in audit)
    lines = [r.getMessage() for r in caplog.records if "widget file access" in r.getMessage()]
    assert len(lines) == 6 and all(session["visitor_id"] not in line for line in lines)


async def test_forged_expired_foreign_and_staff_only_links_are_refused(db: Db) -> None:
    await apply_config(db.sessions, parse_config(CENTER), env={})
    async with running_hub(db) as hub:
        settings = hub.services.settings
        _, session, ack = await _chat_with_files(hub)
        conv = ack["conversation_id"]
        note_file = await _staff_only_file(hub, conv, InteractionKind.NOTE)
        recording = await _staff_only_file(hub, conv, InteractionKind.RECORDING)
        back = Visitor(hub, session["visitor_token"])
        await back.connect()
        hist = (await back.call("history", {}))["messages"]
        await back.sio.disconnect()
        assert [m["text"] for m in hist] == ["The damage:", "Fill this in:"]  # no note
        good = hist[1]["attachments"][0]["url"]
        q = _query(good)

        # another visitor with their own chat and file
        stranger = Visitor(hub)
        stranger_session = await stranger.connect()
        other_ack = await stranger.call(
            "message",
            {"text": "mine", "client_id": "s1",
             "attachments": [{"name": "x.pdf", "type": "application/pdf", "data": PDF + b"x"}]},
        )  # fmt: skip
        stranger_hist = (await stranger.call("history", {}))["messages"]
        await stranger.sio.disconnect()
        assert [m["text"] for m in stranger_hist] == ["mine"]  # never the first visitor's
        stranger_url = stranger_hist[0]["attachments"][0]["url"]
        async with hub.services.sessions() as s:
            by_id = {a.id: a for a in (await s.execute(select(AttachmentRecord))).scalars()}
        records = {a.filename: a for a in by_id.values()}
        form = records["form.pdf"]

        me, them = session["visitor_id"], stranger_session["visitor_id"]
        their_chat = other_ack["conversation_id"]
        note_rec, rec_rec, label = by_id[note_file], by_id[recording], records["label.png"]

        def signed(
            att: AttachmentRecord, sha: str = "", visitor: str = me, chat: str = conv, exp: int = 0
        ) -> str:
            claims = FileClaims(att.id, chat, visitor, sha or att.sha256, exp or expiry())
            return file_url(settings, claims)

        flipped = ("0" if q["s"][0] != "0" else "1") + q["s"][1:]
        refused: dict[str, tuple[str, int]] = {
            "tampered signature": (_with(good, s=flipped), 404),
            "longer expiry": (_with(good, e=str(int(q["e"]) + 86400)), 404),
            "other attachment, same signature": (good.replace(form.id, label.id), 404),
            "other visitor id, same signature": (_with(good, v=them), 404),
            "no signature": (good.split("&s=")[0], 404),
            "garbage": ("/widget/files/at_x?c=..&v=/&k=zz&e=-1&s=", 404),
            "expired": (signed(form, exp=int(time.time()) - 1), 410),
            # genuinely signed, but not this visitor's: the DB check still refuses
            "stranger signs for my file": (signed(form, visitor=them), 404),
            "my file via the stranger's chat": (signed(form, chat=their_chat), 404),
            "media key of another object": (signed(form, sha=label.sha256), 404),
            "a note's file": (signed(note_rec), 404),
            "a call recording": (signed(rec_rec), 404),
        }
        async with httpx.AsyncClient(base_url=hub.url, timeout=10) as web:
            assert (await web.get(good)).content == PDF
            assert (await web.get(stranger_url)).content == PDF + b"x"
            for why, (url, status) in refused.items():
                r = await web.get(url)
                assert r.status_code == status, (why, r.status_code, r.text)
                assert r.json()["code"] == ("link_expired" if status == 410 else "not_found"), why
                assert r.headers["cache-control"] == "no-store"
                assert PDF not in r.content and WAV not in r.content
            # staff endpoints stay closed to the visitor (no session)
            assert (await web.get(f"/api/media/{rec_rec.sha256}")).status_code == 401
    async with db.sessions() as s:
        statuses = [a.status for a in (await s.execute(select(MediaAccess))).scalars()]
    assert statuses == [200, 200]  # refusals serve nothing, so they are not media accesses
