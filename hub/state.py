"""Durable key-value state for channel adapters, on the ``channel_state`` table.

Adapters define small Protocols for the state they need (opt-out lists, sent-message index,
replay nonces, IMAP UIDs, visitor tokens); the hub implements them on this store so that state
lives in the same database as everything else, survives restarts and is shared by processes.
``put`` is an upsert and ``claim`` an atomic insert-if-absent, both native on SQLite and
PostgreSQL (``ON CONFLICT``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.base import utcnow
from hub.db.engine import SessionFactory
from hub.db.models import ChannelState


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ChannelState)


def _live(now: datetime) -> Any:
    return or_(ChannelState.expires_at.is_(None), ChannelState.expires_at > now)


class StateStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def get(self, scope: str, namespace: str, key: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ChannelState.value).where(
                        ChannelState.scope == scope,
                        ChannelState.namespace == namespace,
                        ChannelState.key == key,
                        _live(utcnow()),
                    )
                )
            ).scalar_one_or_none()
        return dict(row) if row is not None else None

    async def put(
        self,
        scope: str,
        namespace: str,
        key: str,
        value: dict[str, Any],
        expires_at: datetime | None = None,
    ) -> None:
        async with self._sessions() as session, session.begin():
            stmt = _insert(session).values(
                scope=scope,
                namespace=namespace,
                key=key,
                value=value,
                expires_at=expires_at,
                updated_at=utcnow(),
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["scope", "namespace", "key"],
                    set_={
                        "value": stmt.excluded.value,
                        "expires_at": stmt.excluded.expires_at,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )

    async def claim(
        self,
        scope: str,
        namespace: str,
        key: str,
        value: dict[str, Any],
        expires_at: datetime | None = None,
    ) -> bool:
        """Store ``value`` unless a live entry holds ``key``; True when this call got it."""
        now = utcnow()
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(ChannelState).where(
                    ChannelState.scope == scope,
                    ChannelState.namespace == namespace,
                    ChannelState.key == key,
                    ChannelState.expires_at.is_not(None),
                    ChannelState.expires_at <= now,
                )
            )
            stmt = _insert(session).values(
                scope=scope,
                namespace=namespace,
                key=key,
                value=value,
                expires_at=expires_at,
                updated_at=now,
            )
            result = await session.execute(
                stmt.on_conflict_do_nothing(index_elements=["scope", "namespace", "key"])
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete(self, scope: str, namespace: str, key: str) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(ChannelState).where(
                    ChannelState.scope == scope,
                    ChannelState.namespace == namespace,
                    ChannelState.key == key,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def items(
        self, scope: str, namespace: str, prefix: str = "", limit: int = 10_000
    ) -> list[tuple[str, dict[str, Any]]]:
        """Live entries of a namespace whose key starts with ``prefix``, by key."""
        cond = [ChannelState.scope == scope, ChannelState.namespace == namespace, _live(utcnow())]
        if prefix:
            cond.append(and_(ChannelState.key >= prefix, ChannelState.key < prefix + "\uffff"))
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(ChannelState.key, ChannelState.value)
                    .where(*cond)
                    .order_by(ChannelState.key)
                    .limit(limit)
                )
            ).all()
        return [(k, dict(v)) for k, v in rows]

    async def purge_expired(self) -> int:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(ChannelState).where(
                    ChannelState.expires_at.is_not(None), ChannelState.expires_at <= utcnow()
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
