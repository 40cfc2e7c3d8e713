"""Canned responses through the real hub: roles, scopes, validation, rendering, and apply.

Every test runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from channels.base import ChannelKind
from hub.canned import check_body, render
from hub.config import ConfigError, apply_config, parse_config
from hub.db.models import CannedResponse, Contact
from hub.domain import Role
from tests.conftest import Db
from tests.hub.helpers import inbound
from tests.hub.server import running_hub

GREET: dict[str, Any] = {
    "title": "Greeting",
    "shortcut": "hello",
    "body": "Hi {{contact.first_name}}, {{ agent.name }} here about case {{conversation.id}}.",
}


def test_placeholders_are_checked_and_rendered() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{\{contact.nmae\}\}"):
        check_body("Hello {{contact.nmae}}")
    out = render("Hi {{contact.name}} / {{queue.name}}", {"contact.name": "Ana"})
    assert (out.text, out.missing) == ("Hi Ana / ", ("queue.name",))


async def test_team_and_personal_scopes_and_roles(db: Db) -> None:
    async with (
        running_hub(db) as hub,
        hub.client(Role.AGENT) as agent,
        hub.client(Role.SUPERVISOR) as sup,
        hub.client(Role.QA) as qa,
        hub.client(Role.ADMIN) as admin,
    ):
        # agents may not create team-wide responses; supervisors may
        r = await agent.post("/api/canned-responses", json={**GREET, "scope": "team"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        team = await sup.post("/api/canned-responses", json={**GREET, "scope": "team"})
        assert team.status_code == 201, team.text
        assert team.json()["scope"] == "team" and team.json()["editable"] is True
        # the same team shortcut twice is a conflict naming the field
        dup = await admin.post("/api/canned-responses", json={**GREET, "scope": "team"})
        assert dup.status_code == 409 and dup.json()["code"] == "shortcut_taken"
        assert dup.json()["data"]["field"] == "shortcut"
        # an agent's personal /hello may shadow the team's
        mine = await agent.post(
            "/api/canned-responses", json={**GREET, "body": "Hey!", "channels": ["webchat"]}
        )
        assert mine.status_code == 201 and mine.json()["scope"] == "personal"
        listing = (await agent.get("/api/canned-responses")).json()
        assert [(i["scope"], i["shortcut"]) for i in listing["items"]] == [
            ("personal", "hello"),
            ("team", "hello"),
        ]
        assert "contact.name" in listing["placeholders"]
        team_id, mine_id = team.json()["id"], mine.json()["id"]
        assert [i["editable"] for i in listing["items"]] == [True, False]
        # agents cannot edit or delete the team's; nobody else sees someone's personal one
        r = await agent.patch(f"/api/canned-responses/{team_id}", json={"title": "x"})
        assert r.status_code == 403
        assert (await agent.delete(f"/api/canned-responses/{team_id}")).status_code == 403
        for other in (sup, qa):
            assert (await other.get(f"/api/canned-responses/{mine_id}")).status_code == 404
            ids = [i["id"] for i in (await other.get("/api/canned-responses")).json()["items"]]
            assert ids == [team_id]
        r = await sup.delete(f"/api/canned-responses/{mine_id}")
        assert r.status_code == 404
        # QA reads but never writes
        r = await qa.post("/api/canned-responses", json=GREET)
        assert r.status_code == 403
        # channel filter: the webchat-only personal one is hidden for SMS
        sms = (await agent.get("/api/canned-responses", params={"channel": "sms"})).json()
        assert [i["id"] for i in sms["items"]] == [team_id]
        # edit and delete one's own
        r = await agent.patch(f"/api/canned-responses/{mine_id}", json={"shortcut": "Hey"})
        assert r.status_code == 200 and r.json()["shortcut"] == "hey"
        r = await sup.patch(f"/api/canned-responses/{team_id}", json={"body": "Hello!"})
        assert r.status_code == 200 and r.json()["body"] == "Hello!"
        assert (await agent.delete(f"/api/canned-responses/{mine_id}")).status_code == 200
        assert (await agent.get(f"/api/canned-responses/{mine_id}")).status_code == 404


async def test_bad_input_is_precise_and_writes_nothing(db: Db) -> None:
    async with running_hub(db) as hub, hub.client(Role.AGENT) as agent:
        r = await agent.post(
            "/api/canned-responses", json={**GREET, "body": "Hi {{contact.nmae}}"}
        )
        assert r.status_code == 422 and r.json()["code"] == "validation_error"
        assert r.json()["data"]["errors"][0]["field"] == "body"
        assert "contact.nmae" in r.json()["message"]
        r = await agent.post("/api/canned-responses", json={**GREET, "shortcut": "/bad space"})
        assert r.status_code == 422 and r.json()["data"]["errors"][0]["field"] == "shortcut"
        r = await agent.post("/api/canned-responses", json={**GREET, "channels": ["pigeon"]})
        assert r.status_code == 422
        r = await agent.post("/api/canned-responses", json={**GREET, "colour": "red"})
        assert r.status_code == 422 and r.json()["code"] == "unknown_field"
        r = await agent.patch("/api/canned-responses/cr_nope", json={"body": "{{agent.x}}"})
        assert r.status_code == 422
    async with db.sessions() as s:
        assert (await s.execute(select(CannedResponse))).scalars().all() == []


async def test_rendered_for_a_conversation(db: Db) -> None:
    async with running_hub(db) as hub:
        receipt = await hub.services.ingestor(
            inbound(ChannelKind.EMAIL, "ana@example.com", "<m1@example.com>", "Help")
        )
        async with db.sessions() as s, s.begin():
            contact = await s.get(Contact, receipt.contact_id)
            assert contact is not None
            contact.name = "Ana Lima"
        async with hub.client(Role.SUPERVISOR) as sup, hub.client(Role.AGENT) as agent:
            body = {**GREET, "scope": "team", "body": GREET["body"] + " {{contact.phone}}"}
            assert (await sup.post("/api/canned-responses", json=body)).status_code == 201
            sms_only = {**GREET, "shortcut": "sms", "channels": ["sms"], "scope": "team"}
            assert (await sup.post("/api/canned-responses", json=sms_only)).status_code == 201
            page = (
                await agent.get(
                    "/api/canned-responses", params={"conversation": receipt.conversation_id}
                )
            ).json()
            [item] = page["items"]  # the SMS-only one does not apply to an email conversation
            assert item["rendered"] == (
                f"Hi Ana, Agent here about case {receipt.conversation_id}. "
            )
            assert item["missing"] == ["contact.phone"]
            r = await agent.get("/api/canned-responses", params={"conversation": "cv_nope"})
            assert r.status_code == 404


CANNED_YAML = """
agents:
  - email: bob@example.com
    name: Bob
canned_responses:
  - shortcut: hello
    title: Greeting
    body: "Hello {{contact.name}}, this is {{agent.first_name}}."
    channels: [webchat, email]
  - shortcut: bye
    title: Goodbye
    body: Bye!
    owner: bob@example.com
"""


async def test_apply_canned_responses(db: Db) -> None:
    config = parse_config(CANNED_YAML, source="center.yaml")
    report = await apply_config(db.sessions, config, env={})
    assert report.counts["canned_responses"].created == 2
    again = await apply_config(db.sessions, config, env={})
    assert again.changed == 0
    edited = CANNED_YAML.replace("Bye!", "Goodbye {{contact.name}}!")
    report = await apply_config(db.sessions, parse_config(edited, source="c.yaml"), env={})
    assert report.changes == ["updated canned_response /bye of bob@example.com (body)"]
    async with db.sessions() as s:
        rows = {r.shortcut: r for r in (await s.execute(select(CannedResponse))).scalars()}
    assert rows["hello"].owner_user_id is None and rows["hello"].channels == ["webchat", "email"]
    assert rows["bye"].owner_user_id is not None
    # prune deletes team-wide responses the file no longer lists, never personal ones
    only_agents = CANNED_YAML.split("canned_responses:")[0]
    pruned = await apply_config(
        db.sessions, parse_config(only_agents, source="c.yaml"), env={}, prune=True
    )
    assert "deleted canned_response /hello" in pruned.changes
    async with db.sessions() as s:
        left = [r.shortcut for r in (await s.execute(select(CannedResponse))).scalars()]
    assert left == ["bye"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (CANNED_YAML.replace("{{agent.first_name}}", "{{agent.nick}}"), "unknown placeholder"),
        (CANNED_YAML.replace("owner: bob@", "owner: nobody@"), "no user 'nobody@example.com'"),
        (
            CANNED_YAML.replace("shortcut: bye", "shortcut: hello").replace(
                "    owner: bob@example.com\n", ""
            ),
            "duplicate shortcut /hello",
        ),
    ],
)
async def test_apply_rejects_bad_canned_responses(db: Db, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        await apply_config(db.sessions, parse_config(text, source="c.yaml"), env={})
    assert where in str(err.value)
    async with db.sessions() as s:
        assert (await s.execute(select(CannedResponse))).scalars().all() == []
