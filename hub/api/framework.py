"""A thin declarative layer over Starlette routes.

Each endpoint is declared once with its method, path, allowed roles and pydantic models; from that
single declaration come the Starlette route, request validation (size limit, JSON, unknown
fields), authentication and role checks, error rendering and the OpenAPI document. Because roles
live in the declaration, a test can walk every endpoint with every role.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.auth import sessions as auth_sessions
from hub.auth.sessions import COOKIE_NAME, Principal
from hub.domain import Role
from hub.errors import ApiError, Forbidden, TooLarge, Unauthorized, ValidationFailed
from hub.services import Services

log = logging.getLogger(__name__)

ALL_STAFF = frozenset(Role)
QA_UP = frozenset({Role.QA, Role.SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})
AGENTS_UP = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
PUBLIC: frozenset[Role] | None = None

CSRF_HEADER = "x-requested-with"


@dataclass
class Context:
    request: Request
    services: Services
    principal: Principal | None
    body: Any
    query: Any
    path: dict[str, str]

    @property
    def user(self) -> Principal:
        if self.principal is None:  # only public endpoints run without one
            raise Unauthorized("authentication required")
        return self.principal


Handler = Callable[[Context], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role] | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    summary: str
    status: int
    tag: str


def _validation_error(exc: ValidationError, where: str) -> ValidationFailed:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    first = errors[0]
    return ValidationFailed(
        f"{where}: {first['field'] or '(root)'}: {first['message']}",
        code="unknown_field" if first["type"] == "extra_forbidden" else "validation_error",
        data={"errors": errors},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body over {limit} bytes", data={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body over {limit} bytes", data={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def _token(request: Request) -> tuple[str | None, bool]:
    """The bearer token and whether it came from the cookie (then CSRF rules apply)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(COOKIE_NAME)
    return (cookie, True) if cookie else (None, False)


class Api:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: frozenset[Role] | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        summary: str = "",
        status: int = 200,
        tag: str = "api",
    ) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    fn,
                    roles,
                    body,
                    query,
                    response,
                    summary or (fn.__doc__ or "").strip().split("\n")[0],
                    status,
                    tag,
                )
            )
            return fn

        return deco

    def routes(self) -> list[Route]:
        by_path: dict[str, dict[str, Endpoint]] = {}
        for ep in self.endpoints:
            by_path.setdefault(ep.path, {})[ep.method] = ep
        return [
            Route(path, self._dispatcher(methods), methods=list(methods))
            for path, methods in by_path.items()
        ]

    def _dispatcher(self, methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ep = methods[request.method if request.method != "HEAD" else "GET"]
            services: Services = request.app.state.services
            try:
                return await self._call(ep, request, services)
            except ApiError as exc:
                if exc.status >= 500:
                    log.error("%s %s failed: %s", ep.method, ep.path, exc.code)
                return JSONResponse(exc.body(), status_code=exc.status, headers=_retry_after(exc))

        return endpoint

    async def _call(self, ep: Endpoint, request: Request, services: Services) -> Response:
        principal = await self._authenticate(ep, request, services)
        body: Any = None
        if ep.body is not None:
            raw = await _read_body(request, services.settings.max_body_bytes)
            try:
                data = json.loads(raw or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ApiError(
                    f"request body is not valid JSON: {exc}", code="invalid_json", status=400
                ) from None
            try:
                body = ep.body.model_validate(data)
            except ValidationError as exc:
                raise _validation_error(exc, "body") from None
        query: Any = None
        if ep.query is not None:
            try:
                query = ep.query.model_validate(dict(request.query_params))
            except ValidationError as exc:
                raise _validation_error(exc, "query") from None
        ctx = Context(request, services, principal, body, query, dict(request.path_params))
        result = await ep.handler(ctx)
        if isinstance(result, Response):
            return result
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        return JSONResponse(result, status_code=ep.status)

    @staticmethod
    async def _authenticate(ep: Endpoint, request: Request, services: Services) -> Principal | None:
        if ep.roles is None:
            return None  # public endpoints never act on credentials (login must not need CSRF)
        token, from_cookie = _token(request)
        if token is None:
            raise Unauthorized("authentication required: send a bearer token or log in")
        if (
            from_cookie
            and request.method not in {"GET", "HEAD"}
            and not request.headers.get(CSRF_HEADER)
        ):
            raise Forbidden(
                f"cookie-authenticated writes need the {CSRF_HEADER} header", code="csrf"
            )
        async with services.sessions() as session:
            principal = await auth_sessions.resolve(session, token)
        if principal is None:
            raise Unauthorized("session expired or invalid", code="invalid_token")
        if principal.role not in ep.roles:
            raise Forbidden(
                f"role {principal.role} may not {ep.method} {ep.path}",
                data={"allowed": sorted(r.value for r in ep.roles)},
            )
        return principal

    def openapi(self, title: str, version: str) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}

        def ref(model: type[BaseModel]) -> dict[str, str]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas[name] = sub
            schemas[model.__name__] = schema
            return {"$ref": f"#/components/schemas/{model.__name__}"}

        error = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        }
        for ep in self.endpoints:
            op: dict[str, Any] = {
                "summary": ep.summary,
                "operationId": _operation_id(ep),
                "tags": [ep.tag],
                "parameters": [
                    {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                    for p in re.findall(r"{(\w+)}", ep.path)
                ],
                "responses": {
                    str(ep.status): {
                        "description": "OK",
                        **(
                            {"content": {"application/json": {"schema": ref(ep.response)}}}
                            if ep.response
                            else {}
                        ),
                    },
                    "4XX": {"description": "Error", **error},
                },
            }
            if ep.query is not None:
                for name, field in ep.query.model_fields.items():
                    op["parameters"].append(
                        {
                            "name": name,
                            "in": "query",
                            "required": field.is_required(),
                            "schema": ep.query.model_json_schema()["properties"][name],
                        }
                    )
            if ep.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(ep.body)}},
                }
            if ep.roles is not None:
                op["security"] = [{"bearer": []}, {"cookie": []}]
                op["x-roles"] = sorted(r.value for r in ep.roles)
            paths.setdefault(ep.path, {})[ep.method.lower()] = op
        schemas["Error"] = {
            "type": "object",
            "required": ["code", "message", "data"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "data": {"type": "object"},
            },
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
                },
            },
        }


def _operation_id(ep: Endpoint) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", ep.path.lower()).strip("_")
    return f"{ep.method.lower()}_{slug}"


def _retry_after(exc: ApiError) -> dict[str, str] | None:
    wait = exc.data.get("retry_after_s")
    return {"Retry-After": str(int(wait) + 1)} if isinstance(wait, int | float) else None
