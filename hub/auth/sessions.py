"""Login sessions: opaque bearer tokens (also carried in an HttpOnly cookie for the browser).

Only the SHA-256 of a token is stored, so reading the database does not let anyone log in.
Tokens expire after ``session_ttl_s`` and logout revokes them at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth.passwords import DUMMY_HASH, verify_password
from hub.db.base import utcnow
from hub.db.models import Agent, Session, User
from hub.domain import Role
from hub.ids import new_id

COOKIE_NAME = "contacthub_session"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, their role and (if they work contacts) their agent id."""

    user_id: str
    email: str
    name: str
    role: Role
    agent_id: str | None
    session_id: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    user = (
        await session.execute(select(User).where(User.email == email.strip().lower()))
    ).scalar_one_or_none()
    if user is None:
        verify_password(DUMMY_HASH, password)  # same time as a wrong password
        return None
    if not user.active or not verify_password(user.password_hash, password):
        return None
    return user


async def open_session(session: AsyncSession, user: User, ttl_s: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        Session(
            id=new_id("session"),
            token_hash=token_hash(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(seconds=ttl_s),
        )
    )
    return token


async def resolve(session: AsyncSession, token: str) -> Principal | None:
    row = (
        await session.execute(
            select(Session, User, Agent.id)
            .join(User, User.id == Session.user_id)
            .outerjoin(Agent, Agent.user_id == User.id)
            .where(Session.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        return None
    sess, user, agent_id = row
    if sess.revoked_at is not None or sess.expires_at <= utcnow() or not user.active:
        return None
    return Principal(user.id, user.email, user.name, Role(user.role), agent_id, sess.id)


async def revoke(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        update(Session).where(Session.id == session_id).values(revoked_at=utcnow())
    )
