"""Make the database match a configuration file, in one transaction, idempotently.

Theory of operation: each kind is matched by its natural key (skills, queues, channels and rules by
name; agents by their user's email), compared field by field with the desired values, and only the
differences are written, so applying the same file twice reports zero changes. Everything that can
be wrong with the file was checked by :mod:`hub.config.load`; what can only be checked against the
environment or the database (a missing ``*_env`` variable, a channel address taken by a channel
the file does not list) is checked inside the transaction before the first write, and any problem
raises :class:`ConfigError` so the transaction rolls back and nothing is half-applied.

With ``prune=True`` the file is the whole truth: skills, queues, channels and routing rules it does
not list are deleted, and agents it does not list are deactivated (their users keep their history;
conversations and assignments are never deleted by a config change). Existing passwords are never
touched; a new agent's user gets the password from ``password_env`` or an unusable one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from hub.auth.passwords import MIN_PASSWORD_LENGTH, UNUSABLE, hash_password
from hub.config.canned import apply_canned
from hub.config.errors import ConfigError, ConfigIssue
from hub.config.load import LoadedConfig
from hub.config.schema import AgentSpec, ChannelSpec, QueueSpec, RuleSpec
from hub.db.models import Agent, AgentSkill, ChannelInstance, Queue, RoutingRule, Skill, User
from hub.domain import Presence
from hub.ids import new_id

log = logging.getLogger(__name__)

KINDS = ("skills", "queues", "channels", "routing_rules", "agents")


@dataclass
class KindCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # for agents: deactivated


@dataclass
class ApplyReport:
    """What an apply did, per kind, plus one human-readable line per change."""

    counts: dict[str, KindCounts] = field(default_factory=lambda: {k: KindCounts() for k in KINDS})
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        """Rows created, updated or deleted; 0 means the database already matched the file."""
        return sum(c.created + c.updated + c.deleted for c in self.counts.values())

    def summary(self) -> str:
        parts = []
        for kind, c in self.counts.items():
            text = f"{kind}: {c.created} created, {c.updated} updated, {c.unchanged} unchanged"
            parts.append(text + (f", {c.deleted} deleted" if c.deleted else ""))
        return "\n".join(parts)

    def _note(self, kind: str, what: str, name: str, fields: list[str] | None = None) -> None:
        counts = self.counts[kind]
        if what == "created":
            counts.created += 1
        elif what == "updated" and fields:
            counts.updated += 1
        elif what in {"deleted", "deactivated"}:
            counts.deleted += 1
        else:
            counts.unchanged += 1
            return
        detail = f" ({', '.join(fields)})" if fields else ""
        self.changes.append(f"{what} {kind.rstrip('s')} {name}{detail}")


def _sync(obj: object, desired: Mapping[str, Any]) -> list[str]:
    """Set the attributes of ``obj`` that differ from ``desired``; return their names."""
    changed = [k for k, v in desired.items() if getattr(obj, k) != v]
    for key in changed:
        setattr(obj, key, desired[key])
    return changed


async def apply_config(
    sessions: async_sessionmaker[AsyncSession],
    config: LoadedConfig,
    *,
    env: Mapping[str, str],
    prune: bool = False,
) -> ApplyReport:
    """Apply ``config`` in one transaction; raise :class:`ConfigError` (nothing written) if it
    cannot be. ``env`` supplies ``password_env`` and channel ``*_env`` values."""
    report = ApplyReport()
    async with sessions() as session, session.begin():
        channel_configs = _channel_configs(config, env)
        if prune:
            await _prune_catalog(session, config, report)
        await _check_channel_addresses(session, config)
        skill_ids = await _apply_skills(session, config, report)
        queue_ids = await _apply_queues(session, config, report)
        await _apply_channels(session, config, queue_ids, channel_configs, report)
        await _apply_rules(session, config, queue_ids, report)
        await _apply_agents(session, config, skill_ids, env, prune, report)
        await apply_canned(session, config, prune, report)  # owners are users by now
    log.info("config %s applied: %d change(s)", config.source, report.changed)
    return report


def _channel_configs(config: LoadedConfig, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each channel's stored config: ``x_env: VAR`` becomes ``x: <value of VAR>``."""
    out, issues = [], []
    for i, ch in enumerate(config.spec.channels):
        resolved: dict[str, Any] = {}
        for key, value in ch.config.items():
            if not key.endswith("_env"):
                resolved[key] = value
            elif env.get(value):
                resolved[key.removesuffix("_env")] = env[value]
            else:
                loc = ("channels", i, "config", key)
                msg = f"environment variable {value} is not set or empty"
                issues.append(config.issue(loc, msg))
        out.append(resolved)
    if issues:
        raise ConfigError(issues)
    return out


async def _prune_catalog(session: AsyncSession, config: LoadedConfig, report: ApplyReport) -> None:
    """Delete rules, channels, queues and skills the file does not list (before any upsert, so
    a freed name or address can be reused by the file and no loaded row goes stale)."""
    spec = config.spec
    targets: list[tuple[str, Any, set[str]]] = [
        ("routing_rules", RoutingRule, {r.name for r in spec.routing_rules}),
        ("channels", ChannelInstance, {c.name for c in spec.channels}),
        ("queues", Queue, {q.name for q in spec.queues}),
        ("skills", Skill, set(spec.skills)),
    ]
    for kind, model, keep in targets:
        rows = (await session.execute(select(model.id, model.name))).all()
        gone = [(row_id, name) for row_id, name in rows if name not in keep]
        if gone:
            await session.execute(delete(model).where(model.id.in_([g[0] for g in gone])))
        for _, name in sorted(gone, key=lambda g: str(g[1])):
            report._note(kind, "deleted", str(name))


async def _check_channel_addresses(session: AsyncSession, config: LoadedConfig) -> None:
    """A channel's (kind, address) must not belong to a channel of another name in the DB."""
    rows = (await session.execute(select(ChannelInstance))).scalars().all()
    owner = {(r.kind, r.address): r.name for r in rows}
    issues: list[ConfigIssue] = []
    for i, ch in enumerate(config.spec.channels):
        other = owner.get((ch.kind.value, ch.address))
        if other is not None and other != ch.name:
            msg = f"address already used by channel {other!r} (rename it, or apply with prune)"
            issues.append(config.issue(("channels", i, "address"), msg))
    if issues:
        raise ConfigError(issues)


async def _apply_skills(
    session: AsyncSession, config: LoadedConfig, report: ApplyReport
) -> dict[str, str]:
    existing = {s.name: s for s in (await session.execute(select(Skill))).scalars()}
    ids: dict[str, str] = {}
    for name in config.spec.skills:
        row = existing.get(name)
        if row is None:
            row = Skill(id=new_id("skill"), name=name)
            session.add(row)
            report._note("skills", "created", name)
        else:
            report._note("skills", "unchanged", name)
        ids[name] = row.id
    await session.flush()
    return ids


def _queue_values(q: QueueSpec) -> dict[str, Any]:
    return {
        "description": q.description,
        "required_skills": [
            {"skill": r.skill, "min_level": r.min_level} for r in q.required_skills
        ],
        "distribution": q.distribution.value,
        "priority": q.priority,
        "offer_ttl_s": q.offer_ttl_s,
        "sl_target_pct": q.service_level.target_pct,
        "sl_target_s": q.service_level.target_s,
        "wrap_up_s": q.wrap_up_s,
        "overflow": [step.model_dump(exclude_none=True) for step in q.overflow],
        "requeue_on_disconnect": q.requeue_on_disconnect,
        "disconnect_grace_s": q.disconnect_grace_s,
        "preferred_agent_window_s": q.preferred_agent_window_s,
    }


async def _apply_queues(
    session: AsyncSession, config: LoadedConfig, report: ApplyReport
) -> dict[str, str]:
    existing = {q.name: q for q in (await session.execute(select(Queue))).scalars()}
    ids: dict[str, str] = {}
    for spec in config.spec.queues:
        values = _queue_values(spec)
        row = existing.get(spec.name)
        if row is None:
            row = Queue(id=new_id("queue"), name=spec.name, **values)
            session.add(row)
            report._note("queues", "created", spec.name)
        else:
            report._note("queues", "updated", spec.name, _sync(row, values))
        ids[spec.name] = row.id
    await session.flush()
    return ids


def _channel_values(
    ch: ChannelSpec, queue_ids: Mapping[str, str], cfg: dict[str, Any]
) -> dict[str, Any]:
    return {
        "kind": ch.kind.value,
        "address": ch.address,
        "queue_id": queue_ids[ch.queue] if ch.queue else None,
        "config": cfg,
        "enabled": ch.enabled,
    }


async def _apply_channels(
    session: AsyncSession,
    config: LoadedConfig,
    queue_ids: Mapping[str, str],
    channel_configs: list[dict[str, Any]],
    report: ApplyReport,
) -> None:
    existing = {c.name: c for c in (await session.execute(select(ChannelInstance))).scalars()}
    for spec, cfg in zip(config.spec.channels, channel_configs, strict=True):
        values = _channel_values(spec, queue_ids, cfg)
        row = existing.get(spec.name)
        if row is None:
            session.add(ChannelInstance(id=new_id("channel"), name=spec.name, **values))
            report._note("channels", "created", spec.name)
        else:
            report._note("channels", "updated", spec.name, _sync(row, values))
    await session.flush()


def _rule_values(index: int, r: RuleSpec, queue_ids: Mapping[str, str]) -> dict[str, Any]:
    return {
        "position": index * 10 if r.position is None else r.position,
        "conditions": r.when.conditions(),
        "queue_id": queue_ids[r.queue] if r.queue else None,
        "priority": r.priority,
        "stop": r.stop,
    }


async def _apply_rules(
    session: AsyncSession, config: LoadedConfig, queue_ids: Mapping[str, str], report: ApplyReport
) -> None:
    existing = {r.name: r for r in (await session.execute(select(RoutingRule))).scalars()}
    for index, spec in enumerate(config.spec.routing_rules):
        values = _rule_values(index, spec, queue_ids)
        row = existing.get(spec.name)
        if row is None:
            session.add(RoutingRule(id=new_id("rule"), name=spec.name, **values))
            report._note("routing_rules", "created", spec.name)
        else:
            report._note("routing_rules", "updated", spec.name, _sync(row, values))
    await session.flush()


async def _initial_password(
    config: LoadedConfig, index: int, spec: AgentSpec, env: Mapping[str, str]
) -> str | ConfigIssue:
    """The hash for a new user: from ``password_env`` when given, else unusable."""
    if spec.password_env is None:
        return UNUSABLE
    loc = ("agents", index, "password_env")
    password = env.get(spec.password_env)
    if not password:  # compose passes unset variables as empty strings
        return config.issue(loc, f"environment variable {spec.password_env} is not set or empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        msg = f"the password in {spec.password_env} is shorter than {MIN_PASSWORD_LENGTH}"
        return config.issue(loc, msg)
    return await asyncio.to_thread(hash_password, password)  # argon2 is deliberately slow


async def _apply_agents(
    session: AsyncSession,
    config: LoadedConfig,
    skill_ids: Mapping[str, str],
    env: Mapping[str, str],
    prune: bool,
    report: ApplyReport,
) -> None:
    query = select(User).options(selectinload(User.agent).selectinload(Agent.skills))
    users = {u.email: u for u in (await session.execute(query)).scalars()}
    specs = config.spec.agents
    # Check every new user's password first: nothing is written if one is missing.
    hashes: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for i, spec in enumerate(specs):
        if spec.email not in users:
            result = await _initial_password(config, i, spec, env)
            if isinstance(result, ConfigIssue):
                issues.append(result)
            else:
                hashes[spec.email] = result
    if issues:
        raise ConfigError(issues)

    for spec in specs:
        user_values = {"name": spec.name, "role": spec.role.value, "active": spec.active}
        agent_values = {
            "display_name": spec.name,
            "capacity": spec.capacity.model_dump(),
            "call_blocks_all": spec.call_blocks_all,
            "tier": spec.tier,
            "voice_endpoint": spec.voice_endpoint,
        }
        user = users.get(spec.email)
        if user is None:
            user = User(
                id=new_id("user"), email=spec.email, password_hash=hashes[spec.email], **user_values
            )
            session.add(user)
            agent = Agent(id=new_id("agent"), user_id=user.id, **agent_values)
            agent.skills = []
            session.add(agent)
            _sync_skills(agent, spec, skill_ids)
            report._note("agents", "created", spec.email)
            continue
        changed = _sync(user, user_values)
        if user.agent is None:  # a user made by create-user becomes an agent
            agent = Agent(id=new_id("agent"), user_id=user.id, **agent_values)
            agent.skills = []
            session.add(agent)
            changed.append("agent")
        else:
            agent = user.agent
            changed += _sync(agent, agent_values)
        changed += _sync_skills(agent, spec, skill_ids)
        report._note("agents", "updated", spec.email, changed)

    if prune:
        listed = {a.email for a in specs}
        for email, user in sorted(users.items()):
            if email not in listed and user.agent is not None and user.active:
                user.active = False
                user.agent.presence = Presence.OFFLINE.value
                report._note("agents", "deactivated", email)
    await session.flush()


def _sync_skills(agent: Agent, spec: AgentSpec, skill_ids: Mapping[str, str]) -> list[str]:
    """Make ``agent.skills`` exactly ``spec.skills``; report "skills" if anything changed."""
    wanted = {skill_ids[name]: level for name, level in spec.skills.items()}
    changed = False
    for link in list(agent.skills):
        if link.skill_id not in wanted:
            agent.skills.remove(link)
            changed = True
        elif link.level != wanted[link.skill_id]:
            link.level = wanted[link.skill_id]
            changed = True
    have = {link.skill_id for link in agent.skills}
    for skill_id, level in wanted.items():
        if skill_id not in have:
            agent.skills.append(AgentSkill(skill_id=skill_id, level=level))
            changed = True
    return ["skills"] if changed else []
