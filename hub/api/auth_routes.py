"""Login, logout and who-am-I."""

from __future__ import annotations

from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from hub.api.framework import ALL_STAFF, PUBLIC, Api, Context
from hub.api.schemas import LoginIn, LoginOut, OkOut, UserOut
from hub.auth import sessions as auth
from hub.auth.sessions import COOKIE_NAME
from hub.db.models import Agent
from hub.errors import RateLimited, Unauthorized

api = Api()


@api.route("POST", "/api/auth/login", roles=PUBLIC, body=LoginIn, response=LoginOut, tag="auth")
async def login(ctx: Context) -> Response:
    """Exchange email and password for a bearer token (also set as an HttpOnly cookie)."""
    body: LoginIn = ctx.body
    services = ctx.services
    ip = ctx.request.client.host if ctx.request.client else "?"
    email = body.email.lower()
    for key in (f"ip:{ip}", f"user:{email}"):
        wait = services.login_limiter.hit(key)
        if wait is not None:
            raise RateLimited(
                "too many login attempts, try again later", data={"retry_after_s": round(wait, 1)}
            )
    async with services.sessions() as session, session.begin():
        user = await auth.authenticate(session, email, body.password)
        if user is None:
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        token = await auth.open_session(session, user, services.settings.session_ttl_s)
        agent = (
            await session.execute(select(Agent).where(Agent.user_id == user.id))
        ).scalar_one_or_none()
    out = LoginOut(
        token=token,
        user=UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            agent_id=agent.id if agent else None,
        ),
    )
    resp = JSONResponse(out.model_dump(mode="json"))
    resp.set_cookie(
        COOKIE_NAME,
        token,
        max_age=services.settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=services.settings.cookie_secure,
        path="/",
    )
    return resp


@api.route("POST", "/api/auth/logout", roles=ALL_STAFF, response=OkOut, tag="auth")
async def logout(ctx: Context) -> Response:
    """Revoke the current session at once."""
    async with ctx.services.sessions() as session, session.begin():
        await auth.revoke(session, ctx.user.session_id)
    resp = JSONResponse(OkOut().model_dump())
    resp.delete_cookie(COOKIE_NAME, path="/")
    return resp


@api.route("GET", "/api/auth/me", roles=ALL_STAFF, response=UserOut, tag="auth")
async def me(ctx: Context) -> UserOut:
    """The logged-in user."""
    u = ctx.user
    return UserOut(id=u.user_id, email=u.email, name=u.name, role=u.role, agent_id=u.agent_id)
