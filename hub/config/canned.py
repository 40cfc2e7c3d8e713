"""The ``canned_responses:`` section of ``contacthub apply``.

A team-wide response is matched by its shortcut, a personal one by (owner email, shortcut); the
title, body and channel list are synced field by field like every other kind, so re-applying the
file changes nothing. Owners must be users in the database once the file's agents are applied
(checked before the first canned write; any problem aborts the whole apply). With ``prune`` only
*team-wide* responses the file does not list are deleted: personal ones belong to their agents,
who manage them in the inbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config.errors import ConfigError, ConfigIssue
from hub.config.load import LoadedConfig
from hub.config.schema import CannedSpec
from hub.db.canned_models import TEAM_OWNER_KEY, CannedResponse
from hub.db.models import User
from hub.ids import new_id

if TYPE_CHECKING:
    from hub.config.apply import ApplyReport

KIND = "canned_responses"


def _values(spec: CannedSpec) -> dict[str, Any]:
    return {
        "title": spec.title,
        "body": spec.body,
        "channels": [c.value for c in dict.fromkeys(spec.channels)],
    }


def _label(spec: CannedSpec) -> str:
    return f"/{spec.shortcut}" + (f" of {spec.owner}" if spec.owner else "")


async def apply_canned(
    session: AsyncSession, config: LoadedConfig, prune: bool, report: ApplyReport
) -> None:
    specs = config.spec.canned_responses
    users = {
        email: user_id
        for email, user_id in (await session.execute(select(User.email, User.id))).all()
    }
    issues: list[ConfigIssue] = []
    seen: dict[tuple[str | None, str], int] = {}
    for i, spec in enumerate(specs):
        key = (spec.owner, spec.shortcut)
        if key in seen:
            line = config.line((KIND, seen[key], "shortcut"))
            issues.append(config.issue((KIND, i, "shortcut"),
                                       f"duplicate shortcut {_label(spec)} (first at line {line})"))
        seen.setdefault(key, i)
        if spec.owner is not None and spec.owner not in users:
            issues.append(config.issue((KIND, i, "owner"),
                                       f"no user {spec.owner!r} (list them under agents)"))
    if issues:
        raise ConfigError(issues)

    rows = list((await session.execute(select(CannedResponse))).scalars())
    if not specs and not (prune and any(r.owner_key == TEAM_OWNER_KEY for r in rows)):
        return  # a file without the section (and nothing to prune) reports as before
    from hub.config.apply import KindCounts  # apply imports this module

    report.counts.setdefault(KIND, KindCounts())
    existing = {(r.owner_key, r.shortcut): r for r in rows}
    listed: set[tuple[str, str]] = set()
    for spec in specs:
        owner_id = users[spec.owner] if spec.owner else None
        owner_key = owner_id or TEAM_OWNER_KEY
        listed.add((owner_key, spec.shortcut))
        values = _values(spec)
        row = existing.get((owner_key, spec.shortcut))
        if row is None:
            session.add(
                CannedResponse(
                    id="cr" + new_id("rule")[2:],
                    owner_key=owner_key,
                    owner_user_id=owner_id,
                    shortcut=spec.shortcut,
                    **values,
                )
            )
            report._note(KIND, "created", _label(spec))
        else:
            changed = [k for k, v in values.items() if getattr(row, k) != v]
            for k in changed:
                setattr(row, k, values[k])
            report._note(KIND, "updated", _label(spec), changed)
    if prune:
        gone = [r for r in rows if r.owner_key == TEAM_OWNER_KEY
                and (r.owner_key, r.shortcut) not in listed]
        if gone:
            await session.execute(
                delete(CannedResponse).where(CannedResponse.id.in_([r.id for r in gone]))
            )
        for r in sorted(gone, key=lambda r: r.shortcut):
            report._note(KIND, "deleted", f"/{r.shortcut}")
    await session.flush()
