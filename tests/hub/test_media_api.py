"""``GET /api/media/{sha256}`` through the real hub: ranges, types, roles, audit, checksums."""

from __future__ import annotations

import hashlib
import os

from sqlalchemy import update

from channels.base import Attachment
from hub.db.models import Conversation
from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import running_hub
from tests.hub.test_search_outbox import ingest

AUDIO = b"RIFF" + (36 + 1000).to_bytes(4, "little") + b"WAVEfmt " + os.urandom(1028)
SHA = hashlib.sha256(AUDIO).hexdigest()


async def test_range_requests_types_and_access_log(db: Db) -> None:
    async with running_hub(db) as hub:
        await ingest(
            hub.services.ingestor,
            "voicemail",
            ext="vm1",
            attachments=[Attachment("vm.wav", "audio/wav", AUDIO)],
        )
        async with hub.client(Role.SUPERVISOR) as c:
            full = await c.get(f"/api/media/{SHA}")
            assert full.status_code == 200
            assert full.content == AUDIO
            assert full.headers["content-type"] == "audio/wav"
            assert full.headers["accept-ranges"] == "bytes"
            assert full.headers["content-disposition"].startswith("inline")
            part = await c.get(f"/api/media/{SHA}", headers={"Range": "bytes=10-19"})
            assert part.status_code == 206
            assert part.content == AUDIO[10:20]
            assert part.headers["content-range"] == f"bytes 10-19/{len(AUDIO)}"
            tail = await c.get(f"/api/media/{SHA}", headers={"Range": "bytes=-4"})
            assert tail.status_code == 206 and tail.content == AUDIO[-4:]
            past = await c.get(f"/api/media/{SHA}", headers={"Range": f"bytes={len(AUDIO)}-"})
            assert past.status_code == 416
            assert past.headers["content-range"] == f"bytes */{len(AUDIO)}"
            down = await c.get(f"/api/media/{SHA}", params={"download": "1"})
            assert down.headers["content-disposition"] == 'attachment; filename="vm.wav"'
            missing = await c.get(f"/api/media/{'0' * 64}")
            assert missing.status_code == 404
            log = await c.get(f"/api/media/{SHA}/access-log")
            assert log.status_code == 200
            items = log.json()["items"]
            assert [(i["status"], i["range"]) for i in items] == [
                (200, None),
                (416, f"bytes={len(AUDIO)}-"),
                (206, f"bytes {len(AUDIO) - 4}-{len(AUDIO) - 1}/{len(AUDIO)}"),
                (206, f"bytes 10-19/{len(AUDIO)}"),
                (200, None),
            ]
            assert {i["email"] for i in items} == {"sup@t.test"}
        async with hub.client(Role.AGENT) as c:
            assert (await c.get(f"/api/media/{SHA}/access-log")).status_code == 403
        async with hub.client(Role.QA) as c:
            assert (await c.get(f"/api/media/{SHA}/access-log")).status_code == 403


async def test_agents_need_a_visible_conversation(db: Db) -> None:
    async with running_hub(db) as hub:
        r = await ingest(
            hub.services.ingestor,
            "fax",
            ext="f1",
            attachments=[Attachment("page.wav", "audio/wav", AUDIO)],
        )
        async with hub.client(Role.AGENT) as c:
            ok = await c.get(f"/api/media/{SHA}")  # unassigned work: visible to agents
            assert ok.status_code == 200 and ok.content == AUDIO
        async with db.sessions() as s, s.begin():
            await s.execute(
                update(Conversation)
                .where(Conversation.id == r.conversation_id)
                .values(assignee_id=hub.agent_ids["agent2@t.test"])
            )
        async with hub.client(Role.AGENT) as c:
            denied = await c.get(f"/api/media/{SHA}")
            assert denied.status_code == 404
        async with hub.client(Role.QA) as c:
            assert (await c.get(f"/api/media/{SHA}")).status_code == 200
        async with hub.client(Role.ADMIN) as c:
            items = (await c.get(f"/api/media/{SHA}/access-log")).json()["items"]
        assert len(items) == 2  # the denied request served nothing and is not an access


async def test_corrupt_file_is_refused(db: Db) -> None:
    async with running_hub(db) as hub:
        await ingest(
            hub.services.ingestor,
            "rec",
            ext="r1",
            attachments=[Attachment("rec.wav", "audio/wav", AUDIO)],
        )
        path = hub.services.extras["media"].path(SHA)
        async with hub.client(Role.SUPERVISOR) as c:
            assert (await c.get(f"/api/media/{SHA}")).status_code == 200
            path.write_bytes(AUDIO[:-1] + b"\x00" + b"!")  # bit rot (size changes too)
            bad = await c.get(f"/api/media/{SHA}")
            assert bad.status_code == 500 and bad.json()["code"] == "media_corrupt"
