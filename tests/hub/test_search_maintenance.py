"""``contacthub reindex`` and ``purge-contact`` as real subprocesses, and channel retention."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from channels.base import Attachment, ChannelKind
from hub.app import supervise
from hub.db.base import utcnow
from hub.db.models import (
    AttachmentRecord,
    ChannelInstance,
    Contact,
    ContactAddress,
    Conversation,
    Interaction,
)
from hub.events import EventBus
from hub.search.backend import index_dir
from hub.search.indexer import Indexer
from hub.search.service import SearchService
from recorder.media import MediaStore
from recorder.search import SearchQuery, Sort, TantivyIndex
from tests.conftest import Db
from tests.hub.test_search_outbox import ingest, make_ingestor, outbox_rows


def cli(db: Db, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATA_DIR"] = str(db.settings.data_dir)
    if db.settings.database_url:
        env["HUB_DATABASE_URL"] = db.settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def snapshot(db: Db, **query: Any) -> list[tuple[str, tuple[Any, ...]]]:
    index = TantivyIndex.open(index_dir(db.settings))
    try:
        result = await index.search(SearchQuery(limit=1000, **query))
        return [
            (h.id, (h.doc.channel, h.doc.kind, h.doc.contact_id, h.doc.text)) for h in result.hits
        ]
    finally:
        await index.close()


async def test_reindex_rebuilds_the_same_results(db: Db) -> None:
    ingestor = make_ingestor(db.sessions)
    for n in range(25):
        await ingest(ingestor, f"ticket {n} about billing", ext=f"m{n}", sender=f"+1555000{n:04d}")
    index = TantivyIndex.open(index_dir(db.settings))
    await Indexer(db.sessions, index).drain_all()
    await index.close()
    before = await snapshot(db, sort=Sort.TIME_ASC)
    assert len(before) == 25
    # damage the index: drop half of it
    index = TantivyIndex.open(index_dir(db.settings))
    await index.delete([i for i, _ in before[::2]])
    await index.commit()
    await index.close()
    assert len(await snapshot(db)) == 12
    r = cli(db, "reindex")
    assert r.returncode == 0, r.stderr
    assert "25/25" in r.stderr and "100%" in r.stderr
    assert r.stdout.startswith("reindexed 25 documents")
    assert await snapshot(db, sort=Sort.TIME_ASC) == before
    assert await outbox_rows(db.sessions) == []


async def test_reindex_refuses_while_a_hub_owns_the_index(db: Db) -> None:
    owner = TantivyIndex.open(index_dir(db.settings))
    try:
        r = await asyncio.to_thread(cli, db, "reindex")
    finally:
        await owner.close()
    assert r.returncode == 2
    assert "stop the running hub first" in r.stderr


async def _count(db: Db, model: Any, *where: Any) -> int:
    async with db.sessions() as s:
        return int(
            (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )


async def test_purge_contact_removes_everything(db: Db) -> None:
    media = MediaStore(db.settings.data_dir / "media")
    ingestor = make_ingestor(db.sessions, media)
    private = Attachment("id.png", "image/png", b"\x89PNG private scan of a passport")
    shared = Attachment("terms.pdf", "application/pdf", b"%PDF-1.4 the same terms for all")
    victim = await ingest(
        ingestor,
        "my passport number is X123",
        ext="v1",
        sender="victim@example.com",
        channel=ChannelKind.EMAIL,
        attachments=[private, shared],
    )
    await ingest(ingestor, "and my address", ext="v2", sender="+15550001111")
    async with db.sessions() as s, s.begin():  # a second identity merged into the victim
        second = (
            await s.execute(select(Interaction.actor_id).where(Interaction.external_id == "v2"))
        ).scalar_one()
        await s.execute(
            update(Contact).where(Contact.id == second).values(merged_into_id=victim.contact_id)
        )
    other = await ingest(
        ingestor, "passport renewal", ext="o1", sender="+15550002222", attachments=[shared]
    )
    index = TantivyIndex.open(index_dir(db.settings))
    await Indexer(db.sessions, index).drain_all()
    await index.close()
    async with db.sessions() as s:
        keys = {
            f: sha
            for f, sha in await s.execute(
                select(AttachmentRecord.filename, AttachmentRecord.sha256)
            )
        }
    assert len(await snapshot(db, text="passport")) == 2

    r = await asyncio.to_thread(cli, db, "purge-contact", victim.contact_id, "--yes")
    assert r.returncode == 0, r.stderr
    assert "contacts: 2" in r.stdout
    assert "conversations: 2" in r.stdout
    assert "media files: 1" in r.stdout
    assert "index: documents removed" in r.stdout

    for contact in (victim.contact_id, second):
        assert await _count(db, Contact, Contact.id == contact) == 0
        assert await _count(db, ContactAddress, ContactAddress.contact_id == contact) == 0
        assert await _count(db, Conversation, Conversation.contact_id == contact) == 0
    assert await _count(db, Interaction, Interaction.external_id.in_(["v1", "v2"])) == 0
    assert not await media.exists(keys["id.png"])  # only the victim had it
    assert await media.exists(keys["terms.pdf"])  # still referenced by another contact
    hits = await snapshot(db, text="passport")
    assert [i for i, _ in hits] == [other.interaction_id]
    assert await snapshot(db, text="address") == []
    missing = await asyncio.to_thread(cli, db, "purge-contact", "ct_nope", "--yes")
    assert missing.returncode == 2 and "no contact ct_nope" in missing.stderr


async def test_channel_retention_deletes_old_interactions(db: Db) -> None:
    media = MediaStore(db.settings.data_dir / "media")
    ingestor = make_ingestor(db.sessions, media)
    old = await ingest(
        ingestor,
        "ancient history",
        ext="old",
        attachments=[Attachment("a.wav", "audio/wav", b"RIFF old recording bytes")],
    )
    new = await ingest(ingestor, "fresh history", ext="new", sender="+15550003333")
    kept_elsewhere = await ingest(ingestor, "other channel history", ext="x", sender="+1555000444")
    async with db.sessions() as s, s.begin():
        s.add(
            ChannelInstance(
                id="ch_sms",
                kind="sms",
                name="sms",
                address="+15559990000",
                config={"retention_days": 1},
            )
        )
        await s.flush()
        for conv in (old.conversation_id, new.conversation_id):
            await s.execute(
                update(Conversation)
                .where(Conversation.id == conv)
                .values(channel_instance_id="ch_sms", status="resolved")
            )
        await s.execute(
            update(Interaction)
            .where(
                Interaction.conversation_id.in_(
                    [old.conversation_id, kept_elsewhere.conversation_id]
                )
            )
            .values(created_at=utcnow() - timedelta(days=3))
        )
        sha = (
            await s.execute(
                select(AttachmentRecord.sha256).where(
                    AttachmentRecord.interaction_id == old.interaction_id
                )
            )
        ).scalar_one()
    service = SearchService(
        db.settings, db.sessions, EventBus(), media, retention_interval_s=0.1, poll_s=0.05
    )
    await service.start(supervise)
    try:
        assert service.index is not None
        for _ in range(100):
            gone = await _count(db, Interaction, Interaction.conversation_id == old.conversation_id)
            hits = await service.index.search(SearchQuery(text="history"))
            if gone == 0 and len(hits.hits) == 2:
                break
            await asyncio.sleep(0.05)
        assert {h.id for h in hits.hits} == {new.interaction_id, kept_elsewhere.interaction_id}
    finally:
        await service.stop()
    assert await _count(db, Conversation, Conversation.id == old.conversation_id) == 0
    assert await _count(db, Interaction, Interaction.id == new.interaction_id) == 1
    assert await _count(db, Interaction, Interaction.id == kept_elsewhere.interaction_id) == 1
    assert not await media.exists(sha)


def test_new_commands_have_help() -> None:
    for cmd in ("reindex", "purge-contact"):
        r = subprocess.run(
            [sys.executable, "-m", "hub.cli", cmd, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0 and "usage: contacthub" in r.stdout
