"""`contacthub apply`: load + validate a YAML file, apply it idempotently in one transaction.

Every DB test runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.auth.passwords import UNUSABLE, hash_password, verify_password
from hub.config import ConfigError, apply_config, load_config, parse_config
from hub.db.models import Agent, AgentSkill, ChannelInstance, Queue, RoutingRule, Skill, User
from hub.rules import Facts, Rule, decide
from tests.conftest import Db

FIXTURES = Path(__file__).parent / "fixtures"
CENTER = (FIXTURES / "center.yaml").read_text()
EXAMPLE = Path(__file__).parents[2] / "docker" / "contacthub.example.yaml"
ENV = {"ALICE_PW": "alice-secret-1", "MAIL_PW": "imap-secret"}
MODELS: list[Any] = [User, Agent, AgentSkill, Skill, Queue, ChannelInstance, RoutingRule]


async def snapshot(db: Db) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table apply writes, as plain values (to prove 'nothing changed')."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.sessions() as s:
        for model in MODELS:
            cols = [c.key for c in model.__table__.columns]
            rows = (await s.execute(select(model))).scalars().all()
            out[model.__tablename__] = sorted(
                ({c: getattr(r, c) for c in cols} for r in rows), key=repr
            )
    return out


async def apply_text(db: Db, text: str, env: dict[str, str] | None = None, **kw: bool) -> Any:
    return await apply_config(
        db.sessions, parse_config(text, source="center.yaml"), env=ENV if env is None else env, **kw
    )


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


async def test_full_apply_creates_everything(db: Db) -> None:
    report = await apply_text(db, CENTER)
    assert {k: (c.created, c.updated, c.unchanged) for k, c in report.counts.items()} == {
        "skills": (3, 0, 0),
        "queues": (2, 0, 0),
        "channels": (4, 0, 0),
        "routing_rules": (2, 0, 0),
        "agents": (2, 0, 0),
    }
    assert report.changed == 13
    async with db.sessions() as s:
        billing = (await s.execute(select(Queue).where(Queue.name == "billing"))).scalar_one()
        assert billing.required_skills == [{"skill": "billing", "min_level": 2}]
        assert billing.overflow == [
            {"after_s": 60, "action": "relax_skills", "min_level": 1},
            {"after_s": 180, "action": "add_queue", "queue": "general"},
        ]
        assert (billing.distribution, billing.priority, billing.offer_ttl_s) == (
            "skill_level",
            5,
            25,
        )
        assert (billing.sl_target_pct, billing.sl_target_s, billing.wrap_up_s) == (90, 20, 45)
        assert (billing.requeue_on_disconnect, billing.disconnect_grace_s) == (False, 30)
        assert billing.preferred_agent_window_s == 3600

        channels = {c.name: c for c in (await s.execute(select(ChannelInstance))).scalars()}
        assert channels["support"].address == "support@example.com"  # normalized like ingest
        assert channels["support"].config == {
            "imap_host": "imap.example.com",
            "password": "imap-secret",
        }
        assert channels["sms-line"].address == "+14155550100"
        assert channels["main-number"].queue_id is None

        users = {u.email: u for u in (await s.execute(select(User))).scalars()}
        assert set(users) == {"alice@example.com", "bob@example.com"}
        assert verify_password(users["alice@example.com"].password_hash, "alice-secret-1")
        assert users["bob@example.com"].password_hash == UNUSABLE  # no password_env
        assert users["alice@example.com"].role == "supervisor"

        agents = (await s.execute(select(Agent).where(Agent.display_name == "Bob"))).scalar_one()
        assert agents.capacity == {"voice": 0, "email": 0, "fax": 0, "sms": 2, "webchat": 4}
        assert agents.call_blocks_all is False
        assert {(link.skill.name, link.level) for link in agents.skills} == {
            ("english", 3),
            ("technical", 4),
        }
        rules = (await s.execute(select(RoutingRule))).scalars().all()

    # The stored rules mean what the file says to the same evaluator ingest uses.
    as_rules = [
        Rule(r.name, r.position, r.conditions, r.queue_id, r.priority, r.stop) for r in rules
    ]
    vip_refund = Facts("email", "support@example.com", "I want a REFUND", {"vip": True})
    decision = decide(as_rules, vip_refund, fallback_queue=None)
    assert (decision.queue_id, decision.priority) == (billing.id, 50)
    assert decision.matched == ("vip", "billing-words")
    sms = decide(as_rules, Facts("sms", "+14155550100", "invoice?"), fallback_queue=None)
    assert (sms.queue_id, sms.matched) == (billing.id, ("billing-words",))
    other_number = decide(as_rules, Facts("sms", "+14155550111", "invoice?"), fallback_queue=None)
    assert other_number.queue_id is None
    plain = decide(as_rules, Facts("webchat", "site-key-1", "refund"), fallback_queue="q")
    assert (plain.queue_id, plain.priority) == ("q", 0)


async def test_reapply_changes_nothing(db: Db) -> None:
    await apply_text(db, CENTER)
    before = await snapshot(db)
    again = await apply_text(db, CENTER)
    assert again.changed == 0
    assert again.changes == []
    assert sum(c.unchanged for c in again.counts.values()) == 13
    assert await snapshot(db) == before


async def test_update_of_one_field_touches_only_that(db: Db) -> None:
    await apply_text(db, CENTER)
    before = await snapshot(db)
    report = await apply_text(db, edit(CENTER, "offer_ttl_s: 25", "offer_ttl_s: 40"))
    assert report.changes == ["updated queue billing (offer_ttl_s)"]
    assert (report.counts["queues"].updated, report.changed) == (1, 1)
    after = await snapshot(db)
    changed = [
        (table, i)
        for table in before
        for i, (a, b) in enumerate(zip(before[table], after[table], strict=True))
        if a != b
    ]
    assert len(changed) == 1 and changed[0][0] == "queues"
    async with db.sessions() as s:
        ttl = (await s.execute(select(Queue.offer_ttl_s).where(Queue.name == "billing"))).scalar()
    assert ttl == 40


async def test_agent_skills_and_capacity_follow_the_file(db: Db) -> None:
    await apply_text(db, CENTER)
    text = edit(CENTER, "skills: {english: 3, technical: 4}", "skills: {english: 4}")
    text = edit(text, "capacity: {webchat: 4, sms: 2}", "capacity: {webchat: 4, sms: 2, fax: 1}")
    report = await apply_text(db, text)
    assert report.changes == ["updated agent bob@example.com (capacity, skills)"]
    async with db.sessions() as s:
        bob = (await s.execute(select(Agent).where(Agent.display_name == "Bob"))).scalar_one()
        assert {(link.skill.name, link.level) for link in bob.skills} == {("english", 4)}
        assert bob.capacity["fax"] == 1


async def test_existing_passwords_are_never_overwritten(db: Db) -> None:
    async with db.sessions() as s, s.begin():  # as `contacthub create-user` would leave it
        s.add(
            User(
                id="us_bob",
                email="bob@example.com",
                name="B",
                password_hash=hash_password("bob-own-pw"),
            )
        )
    await apply_text(db, CENTER)
    report = await apply_text(db, CENTER, env={**ENV, "ALICE_PW": "another-password"})
    assert report.changed == 0
    async with db.sessions() as s:
        users = {u.email: u for u in (await s.execute(select(User))).scalars()}
        agent = (await s.execute(select(Agent).where(Agent.user_id == "us_bob"))).scalar_one()
    assert verify_password(users["bob@example.com"].password_hash, "bob-own-pw")
    assert users["bob@example.com"].name == "Bob"  # the file owns the name, not the password
    assert agent.display_name == "Bob"
    assert verify_password(users["alice@example.com"].password_hash, "alice-secret-1")
    assert not verify_password(users["alice@example.com"].password_hash, "another-password")


async def test_prune_deletes_what_the_file_no_longer_lists(db: Db) -> None:
    await apply_text(db, CENTER)
    smaller = CENTER.split("\nagents:")[0].replace(", technical]", "]")  # also drops technical
    smaller = smaller.replace("required_skills: [{skill: english}]", "")
    kept = await apply_text(db, smaller)
    assert kept.changes == ["updated queue general (required_skills)"]  # no prune: nothing deleted
    report = await apply_text(db, smaller, prune=True)
    assert {k: c.deleted for k, c in report.counts.items()} == {
        "skills": 1,
        "queues": 0,
        "channels": 4,
        "routing_rules": 2,
        "agents": 2,
    }
    assert "deactivated agent alice@example.com" in report.changes
    async with db.sessions() as s:
        assert set((await s.execute(select(Skill.name))).scalars()) == {"english", "billing"}
        assert (await s.execute(select(ChannelInstance))).first() is None
        users = (await s.execute(select(User))).scalars().all()
        assert len(users) == 2 and not any(u.active for u in users)  # history kept, logins off
        links = (await s.execute(select(AgentSkill).join(Skill))).scalars().all()
        assert {(link.skill.name, link.level) for link in links} == {
            ("english", 5),
            ("english", 3),
            ("billing", 4),
        }
    assert (await apply_text(db, smaller, prune=True)).changed == 0


async def test_the_docker_example_applies(db: Db) -> None:
    config = load_config(EXAMPLE)
    env = {
        name: f"pw-{name.lower()}"
        for name in ("CONTACTHUB_MAIL_PASSWORD", "CONTACTHUB_KANNEL_PASSWORD")
    }
    env |= {a.password_env: "password-123" for a in config.spec.agents if a.password_env}
    report = await apply_config(db.sessions, config, env=env)
    kinds = {c.kind for c in config.spec.channels}
    assert len(kinds) == 4 and report.counts["channels"].created == 4
    assert 2 <= report.counts["queues"].created <= 3
    assert 4 <= report.counts["agents"].created <= 6
    assert (await apply_config(db.sessions, config, env=env)).changed == 0


# --- bad input: a precise message, and the database exactly as it was -------------------------

BAD_FILES = {
    "yaml syntax": (
        ("    description: Money questions\n", "    description: [Money\n"),
        "center.yaml:12: YAML syntax error: expected ',' or ']', but got ':'"
        " (while parsing a flow sequence at line 11)",
    ),
    "unknown field": (
        ("wrap_up_s: 45", "wrap_up_secs: 45"),
        "center.yaml:17: queues[1].wrap_up_secs: unknown field (allowed: name, description, "
        "required_skills, distribution, priority, offer_ttl_s, service_level, wrap_up_s, overflow, "
        "requeue_on_disconnect, disconnect_grace_s, preferred_agent_window_s)",
    ),
    "bad enum": (
        ("distribution: skill_level", "distribution: fastest"),
        "center.yaml:13: queues[1].distribution: must be one of 'longest_idle', 'round_robin', "
        "'least_busy' or 'skill_level' (got 'fastest')",
    ),
    "out of range": (
        ("offer_ttl_s: 25", "offer_ttl_s: 0"),
        "center.yaml:15: queues[1].offer_ttl_s: must be > 0 (got 0)",
    ),
    "bad reference": (
        ("{skill: billing, min_level: 2}", "{skill: biling, min_level: 2}"),
        "center.yaml:12: queues[1].required_skills[0].skill: unknown skill 'biling' "
        "(known: billing, english, technical)",
    ),
    "duplicate name": (
        ("    name: site\n", "    name: support\n"),
        "center.yaml:53: channels[3].name: duplicate channel name 'support' (first at line 41)",
    ),
    "duplicate key": (
        ("    wrap_up_s: 45\n", "    wrap_up_s: 45\n    priority: 3\n"),
        "center.yaml:18: queues[1].priority: duplicate key (first at line 14)",
    ),
    "unquoted number": (
        ('address: "+14155550100"', "address: +14155550100"),
        "center.yaml:51: channels[2].address: must be text, got the number 14155550100 "
        "(quote it in YAML)",
    ),
    "option of another action": (
        ("action: escalate, tier: 2", "action: callback, tier: 2"),
        "center.yaml:9: queues[0].overflow[0].tier: does not apply to action callback",
    ),
    "unknown rule condition": (
        ("when: {contact: {vip: true}}", "when: {customer: {vip: true}}"),
        "center.yaml:58: routing_rules[0].when.customer: unknown field "
        "(allowed: channel, address, keywords, contact, metadata)",
    ),
    "bad channel kind in rule": (
        ("channel: [email, sms]", "channel: [email, pigeon]"),
        "center.yaml:62: routing_rules[1].when.channel[1]: must be one of 'voice', 'email', 'fax', "
        "'sms' or 'webchat' (got 'pigeon')",
    ),
    "bad rule address": (
        ("address: [Support@Example.com,", "address: [Support@,"),
        "center.yaml:62: routing_rules[1].when.address: not an email address: 'Support@'",
    ),
    "bad email": (
        ("email: bob@example.com", "email: bob at example.com"),
        "center.yaml:33: agents[1].email: not an email address: 'bob at example.com'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_bad_file_is_rejected_precisely_and_changes_nothing(db: Db, case: str) -> None:
    await apply_text(db, CENTER)
    before = await snapshot(db)
    (old, new), message = BAD_FILES[case]
    # The file also renames Bob: had anything been applied, the snapshot would show it.
    text = edit(edit(CENTER, old, new), "name: Bob", "name: Robert")
    with pytest.raises(ConfigError) as info:
        await apply_text(db, text)
    assert str(info.value) == message
    assert info.value.code == "config_invalid"
    assert await snapshot(db) == before


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "bad_references.yaml")
    assert [(i.line, i.message) for i in info.value.issues] == [
        (1, "duplicate skill 'english' (first at line 1)"),
        (4, "unknown skill 'englsh' (known: billing, english)"),
        (7, "a queue cannot overflow into itself"),
        (8, "duplicate queue 'general' (first at line 3)"),
        (12, "unknown skill 'french' (known: billing, english)"),
        (13, "duplicate email 'ann@example.com' (first at line 10)"),
        (16, "unknown queue 'sales' (known: billing, general)"),
        (17, "duplicate channel 'sms +14155550100' (first at line 16)"),
        (20, "unknown queue 'nowhere' (known: billing, general)"),
    ]


def test_syntax_error_names_the_line_and_unreadable_files_fail_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "bad_syntax.yaml")
    assert str(info.value) == (
        "bad_syntax.yaml:6: YAML syntax error: found unexpected end of stream"
        " (while scanning a quoted scalar at line 4)"
    )
    with pytest.raises(ConfigError, match=r"^missing.yaml: cannot read: No such file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- skills\n")
    with pytest.raises(ConfigError, match=r"^list.yaml:1: the top level must be a mapping$"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    with pytest.raises(ConfigError, match=r"^empty.yaml:1: the file is empty$"):
        load_config(tmp_path / "empty.yaml")


async def test_missing_secret_for_a_new_agent_writes_nothing_at_all(db: Db) -> None:
    """Skills, queues, channels and rules come first in the transaction; all are rolled back."""
    before = await snapshot(db)
    with pytest.raises(ConfigError) as info:
        await apply_text(db, CENTER, env={"MAIL_PW": "x"})
    assert (
        str(info.value) == "center.yaml:32: agents[0].password_env: environment variable ALICE_PW"
        " is not set or empty"
    )
    assert await snapshot(db) == before
    with pytest.raises(ConfigError, match=r"^center.yaml:32: .*ALICE_PW is shorter than 8$"):
        await apply_text(db, CENTER, env={"MAIL_PW": "x", "ALICE_PW": "short"})
    with pytest.raises(ConfigError) as info:
        await apply_text(db, CENTER, env={"ALICE_PW": "long-enough", "MAIL_PW": ""})
    assert str(info.value) == (
        "center.yaml:44: channels[0].config.password_env:"
        " environment variable MAIL_PW is not set or empty"
    )
    assert await snapshot(db) == before
    # Once Alice exists, her password_env is no longer needed (it is never used again).
    await apply_text(db, CENTER)
    assert (await apply_text(db, CENTER, env={"MAIL_PW": "imap-secret"})).changed == 0


async def test_address_owned_by_another_channel_is_refused_unless_pruned(db: Db) -> None:
    await apply_text(db, CENTER)
    renamed = edit(CENTER, "name: sms-line", "name: sms-main")
    before = await snapshot(db)
    with pytest.raises(ConfigError) as info:
        await apply_text(db, renamed)
    assert str(info.value) == (
        "center.yaml:47: channels[1].address: address already used by channel 'sms-line' "
        "(rename it, or apply with prune)"
    )
    assert await snapshot(db) == before
    report = await apply_text(db, renamed, prune=True)
    assert report.changes == ["deleted channel sms-line", "created channel sms-main"]


def test_the_documented_example_is_valid() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    block = docs.split("## Complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(block, source="configuration.md")
    assert [q.name for q in config.spec.queues] == ["general", "billing"]
    assert {a.password_env for a in config.spec.agents} == {"ALICE_PASSWORD", None}
