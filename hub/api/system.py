"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from hub.api.framework import PUBLIC, Api, Context

api = Api()


@api.route("GET", "/healthz", roles=PUBLIC, tag="system")
async def healthz(ctx: Context) -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@api.route("GET", "/readyz", roles=PUBLIC, tag="system")
async def readyz(ctx: Context) -> Response:
    """The database answers (503 otherwise)."""
    try:
        async with ctx.services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; say what kind
        return JSONResponse(
            {"status": "unavailable", "database": type(exc).__name__}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@api.route("GET", "/metrics", roles=PUBLIC, tag="system")
async def metrics(ctx: Context) -> Response:
    """Prometheus text exposition (no personal data in any label)."""
    return Response(
        ctx.services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
