"""The `contacthub` command as a user runs it: a real subprocess against a fresh data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Db

CLI = [sys.executable, "-m", "hub.cli"]


def run(
    args: list[str], data_dir: Path, *, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {"HUB_DATA_DIR": str(data_dir), **(extra_env or {})}
    return subprocess.run(
        CLI + args, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_help_everywhere(tmp_path: Path) -> None:
    for cmd in ([], ["serve"], ["demo"], ["migrate"], ["create-user"], ["apply"]):
        r = run([*cmd, "--help"], tmp_path)
        assert r.returncode == 0 and "usage: contacthub" in r.stdout


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    r = run(["migrate"], tmp_path, extra_env={"HUB_PORT": "eighty"})
    assert r.returncode == 2
    assert r.stderr.strip() == "contacthub: error: HUB_PORT: expected an integer, got 'eighty'"


def test_create_user_then_login_via_served_app(tmp_path: Path) -> None:
    r = run(
        [
            "create-user",
            "--email",
            "Root@Example.com",
            "--name",
            "Root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        tmp_path,
        stdin="s3cret-password\n",
    )
    assert r.returncode == 0, r.stderr
    assert "created admin root@example.com" in r.stdout
    dup = run(
        [
            "create-user",
            "--email",
            "root@example.com",
            "--name",
            "Root",
            "--role",
            "qa",
            "--password-stdin",
        ],
        tmp_path,
        stdin="s3cret-password\n",
    )
    assert dup.returncode == 2 and "exists" in dup.stderr
    short = run(
        [
            "create-user",
            "--email",
            "x@example.com",
            "--name",
            "X",
            "--role",
            "qa",
            "--password-stdin",
        ],
        tmp_path,
        stdin="short\n",
    )
    assert short.returncode == 2 and "at least 8" in short.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {"HUB_DATA_DIR": str(tmp_path), "HUB_PORT": str(port), "HUB_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [*CLI, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("contacthub serve did not become ready")
        r2 = httpx.post(
            f"{url}/api/auth/login",
            json={"email": "root@example.com", "password": "s3cret-password"},
        )
        assert r2.status_code == 200 and r2.json()["user"]["role"] == "admin"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_apply_validates_whole_file_and_is_idempotent(tmp_path: Path) -> None:
    good = tmp_path / "center.yaml"
    good.write_text(
        "skills: [english]\nqueues:\n  - name: general\n    required_skills:\n"
        "      - {skill: english, min_level: 1}\n"
    )
    first = run(["apply", str(good)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 change(s)" in first.stdout
    again = run(["apply", str(good)], tmp_path)
    assert again.returncode == 0 and "0 change(s)" in again.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("skills: [english]\nqueues:\n  - name: other\n    offer_ttl_s: -1\n")
    r = run(["apply", str(bad)], tmp_path)
    assert r.returncode == 2
    assert "nothing was changed" in r.stderr
    assert "bad.yaml:4: queues[0].offer_ttl_s" in r.stderr
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text(
        "skills: [english]\nqueues:\n  - name: other\n    required_skills:\n"
        "      - {skill: spanish, min_level: 1}\n"
    )
    r = run(["apply", str(dangling)], tmp_path)
    assert r.returncode == 2 and "dangling.yaml:5" in r.stderr and "spanish" in r.stderr
    assert "0 change(s)" in run(["apply", str(good)], tmp_path).stdout  # nothing half-written
    missing = run(["apply", str(tmp_path / "nope.yaml")], tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_demo_seeds_every_channel(tmp_path: Path, db: Db) -> None:
    """`contacthub demo --no-serve` against this test's database (SQLite and PostgreSQL)."""
    extra = {"HUB_DATABASE_URL": db.settings.database_url} if db.dialect == "postgres" else {}
    data_dir = db.settings.data_dir
    r = run(["demo", "--no-serve"], data_dir, extra_env=extra)
    assert r.returncode == 0, r.stderr
    assert "admin@example.com" in r.stdout and "site key: demo" in r.stdout
    again = run(["demo", "--no-serve"], data_dir, extra_env=extra)  # re-running is harmless
    assert again.returncode == 0 and "(0 changes)" in again.stdout


async def test_demo_data_is_real_work(tmp_path: Path, db: Db) -> None:
    from sqlalchemy import select

    from hub.db.models import Conversation, Queue, User

    extra = {"HUB_DATABASE_URL": db.settings.database_url} if db.dialect == "postgres" else {}
    r = run(["demo", "--no-serve"], db.settings.data_dir, extra_env=extra)
    assert r.returncode == 0, r.stderr
    async with db.sessions() as s:
        convs = (await s.execute(select(Conversation))).scalars().all()
        roles = {u.role for u in (await s.execute(select(User))).scalars()}
    assert {c.channel for c in convs} == {"webchat", "email", "voice", "sms", "fax"}
    assert roles == {"admin", "supervisor", "agent", "qa"}
    assert len({c.contact_id for c in convs if c.channel in ("voice", "sms", "fax")}) == 1
    async with db.sessions() as s:
        queue_names = {r[0]: r[1] for r in await s.execute(select(Queue.id, Queue.name))}
    queues = {c.channel: queue_names.get(c.queue_id or "") for c in convs}
    # every demo item is routable work, and the call's IVR choice picked its queue by a rule
    assert None not in queues.values(), queues
    assert queues["voice"] == "technical" and queues["fax"] == "general"
