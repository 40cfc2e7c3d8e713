"""Login, sessions, the role matrix over every endpoint, and bad input."""

from __future__ import annotations

import re

import httpx

from hub.api.framework import CSRF_HEADER
from hub.app import all_endpoints, openapi_document
from hub.domain import Role
from tests.conftest import Db
from tests.hub.server import PASSWORD, running_hub


async def test_login_me_logout(db: Db) -> None:
    async with running_hub(db) as hub, hub.client() as c:
        bad = await c.post("/api/auth/login", json={"email": "agent@t.test", "password": "nope"})
        assert bad.status_code == 401 and bad.json()["code"] == "invalid_credentials"
        nouser = await c.post("/api/auth/login", json={"email": "x@t.test", "password": "nope"})
        assert nouser.status_code == 401 and nouser.json()["code"] == "invalid_credentials"
        ok = await c.post("/api/auth/login", json={"email": "Agent@T.test", "password": PASSWORD})
        assert ok.status_code == 200
        token = ok.json()["token"]
        assert ok.json()["user"]["role"] == "agent" and ok.json()["user"]["agent_id"]
        assert "contacthub_session" in ok.headers["set-cookie"]
        assert "HttpOnly" in ok.headers["set-cookie"]
        async with hub.client(token=token) as me:
            assert (await me.get("/api/auth/me")).json()["email"] == "agent@t.test"
            assert (await me.post("/api/auth/logout")).status_code == 200
            again = await me.get("/api/auth/me")
            assert again.status_code == 401 and again.json()["code"] == "invalid_token"


async def test_password_hash_is_argon2_and_token_not_stored(db: Db) -> None:
    from sqlalchemy import select

    from hub.db.models import Session, User

    async with running_hub(db) as hub:
        async with db.sessions() as s:
            user = (await s.execute(select(User).where(User.email == "qa@t.test"))).scalar_one()
            stored = (await s.execute(select(Session.token_hash))).scalars().all()
        assert user.password_hash.startswith("$argon2id$")
        assert hub.tokens[Role.QA] not in stored and len(stored) >= 4


async def test_login_is_rate_limited(db: Db) -> None:
    async with running_hub(db, login_attempts_per_minute=6) as hub, hub.client() as c:
        # the fixture logged in 4 users from this IP: two more guesses fit in the window
        for _ in range(2):
            r = await c.post("/api/auth/login", json={"email": "qa@t.test", "password": "guess"})
            assert r.status_code == 401
        # then even the right password is refused until the window moves on
        r = await c.post("/api/auth/login", json={"email": "qa@t.test", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1


async def test_cookie_auth_needs_csrf_header_for_writes(db: Db) -> None:
    async with (
        running_hub(db) as hub,
        httpx.AsyncClient(
            base_url=hub.url, cookies={"contacthub_session": hub.tokens[Role.ADMIN]}
        ) as c,
    ):
        assert (await c.get("/api/auth/me")).status_code == 200
        forged = await c.post("/api/auth/logout")
        assert forged.status_code == 403 and forged.json()["code"] == "csrf"
        ok = await c.post("/api/auth/logout", headers={CSRF_HEADER: "contacthub"})
        assert ok.status_code == 200


def _concrete(path: str) -> str:
    return re.sub(r"{\w+}", "xx_00000000000000000000000000", path)


async def test_every_route_with_every_role(db: Db) -> None:
    """Walk every declared endpoint: 401 without a token, 403 for roles not allowed, and never
    401/403 for allowed roles (they get 2xx or a 4xx about the resource or body instead)."""
    endpoints = all_endpoints()
    assert len(endpoints) >= 20
    async with running_hub(db) as hub:
        for ep in endpoints:
            if ep.path == "/api/auth/logout":
                continue  # would revoke the tokens the walk still needs; tested above
            path = _concrete(ep.path)
            if ep.roles is None:
                async with hub.client() as anon:
                    r = await anon.request(ep.method, path, json={} if ep.body else None)
                assert r.status_code not in (401, 403), (ep.method, ep.path, r.text)
                continue
            async with hub.client() as anon:
                r = await anon.request(ep.method, path, json={} if ep.body else None)
            assert r.status_code == 401, (ep.method, ep.path, "anonymous", r.status_code)
            for role in Role:
                async with hub.client(role) as c:
                    r = await c.request(ep.method, path, json={} if ep.body else None)
                if role in ep.roles:
                    assert r.status_code not in (401, 403), (ep.method, ep.path, role, r.text)
                else:
                    assert r.status_code == 403, (ep.method, ep.path, role, r.status_code)
                    assert r.json()["code"] == "forbidden"


async def test_bad_input_gets_precise_errors(db: Db) -> None:
    async with running_hub(db, max_body_bytes=2048) as hub, hub.client(Role.ADMIN) as c:
        r = await c.post(
            "/api/users", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_json"
        r = await c.post(
            "/api/users",
            json={
                "email": "n@t.test",
                "name": "N",
                "role": "agent",
                "password": "longenough",
                "colour": "red",
            },
        )
        assert r.status_code == 422 and r.json()["code"] == "unknown_field"
        assert r.json()["data"]["errors"][0]["field"] == "colour"
        r = await c.post(
            "/api/users",
            json={"email": "n@t.test", "name": "N", "role": "boss", "password": "longenough"},
        )
        assert r.status_code == 422 and "role" in r.json()["message"]
        r = await c.post(
            "/api/users",
            json={
                "email": "n@t.test",
                "name": "x" * 5000,
                "role": "agent",
                "password": "longenough",
            },
        )
        assert r.status_code == 413 and r.json()["code"] == "body_too_large"
        r = await c.get("/api/conversations", params={"limit": "9999"})
        assert r.status_code == 422 and r.json()["data"]["errors"][0]["field"] == "limit"
        r = await c.get("/api/nowhere")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        # nothing half-written: the user list is still the seeded five
        users = (await c.get("/api/users")).json()["items"]
        assert len(users) == 5
        created = await c.post(
            "/api/users",
            json={"email": "N@t.test", "name": "N", "role": "qa", "password": "longenough"},
        )
        assert created.status_code == 201
        dup = await c.post(
            "/api/users",
            json={"email": "n@t.test", "name": "N", "role": "qa", "password": "longenough"},
        )
        assert dup.status_code == 409 and dup.json()["code"] == "duplicate"


async def test_openapi_document_describes_every_route(db: Db) -> None:
    async with running_hub(db) as hub, hub.client() as c:
        doc = (await c.get("/api/openapi.json")).json()
    assert doc == openapi_document()
    assert doc["openapi"].startswith("3.")
    for ep in all_endpoints():
        op = doc["paths"][ep.path][ep.method.lower()]
        assert op["operationId"] and op["summary"]
        if ep.roles is not None:
            assert sorted(op["x-roles"]) == sorted(r.value for r in ep.roles)
        if ep.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    ids = [op["operationId"] for p in doc["paths"].values() for op in p.values()]
    assert len(ids) == len(set(ids))


async def test_health_readiness_metrics(db: Db) -> None:
    async with running_hub(db) as hub, hub.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        await c.get("/api/auth/me")
        text = (await c.get("/metrics")).text
        assert (
            'contacthub_http_requests_total{method="GET",route="/api/auth/me",status="401"}' in text
        )
