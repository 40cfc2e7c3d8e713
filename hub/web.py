"""The browser pages the hub serves: the agent inbox at ``/inbox/``, the QA page at ``/qa/``
and the visitor widget at ``/widget/``, plus the response headers shared with
``GET /api/media/{sha256}`` (hub.api.media), from which the inbox shows fax pages, recordings
and email files.

The pages are plain files (no build step for the inbox), found next to the ``hub`` package in
``widget/``: in a source checkout that is the repository's ``widget/`` directory, and an
installed distribution ships the same tree as package data beside ``hub`` (see the package-data
note in the report / pyproject). A missing directory is logged and its mount skipped, so the
API still runs when only the Python packages were installed.

Security: the inbox runs with a strict Content-Security-Policy (scripts only from this origin,
no inline script, no plugins, not frameable) because it renders customer content; customer HTML
(email) is shown in a sandboxed ``srcdoc`` iframe without scripts, and the CSP is the second
wall. Media is served with ``nosniff`` and a ``sandbox`` CSP (:data:`ATTACHMENT_CSP`), and only
the passive types in :data:`INLINE_TYPES` are shown inline; everything else downloads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)

WIDGET_ROOT = Path(__file__).resolve().parent.parent / "widget"
INBOX_DIR = WIDGET_ROOT / "inbox"
QA_DIR = WIDGET_ROOT / "qa"
VISITOR_DIST = WIDGET_ROOT / "visitor" / "dist"

INBOX_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # inline *styles* only: customer email HTML keeps its formatting inside the sandbox
        "style-src 'self' 'unsafe-inline'",
        # no remote images: tracking pixels in customer email never load
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
INBOX_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": INBOX_CSP,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",  # revalidate (ETag) so an upgrade reaches agents at once
}
WIDGET_HEADERS = {**COMMON_HEADERS, "Cache-Control": "public, max-age=300"}
ATTACHMENT_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'"
# shown inline by the inbox (<img>, <audio>, <video>); anything else is a download
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/mpeg",
        "audio/ogg",
        "audio/webm",
        "audio/mp4",
        "audio/aac",
        "audio/flac",
        "video/mp4",
        "video/webm",
    }
)


class HeaderedStatic(StaticFiles):
    """Static files with fixed security headers on every file response (a missing file is the
    app's JSON 404)."""

    def __init__(self, *, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory, html=True)
        self.extra_headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        for name, value in self.extra_headers.items():
            response.headers.setdefault(name, value)
        if path.endswith((".js", ".mjs")):  # module scripts need a JavaScript type
            response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        return response


async def _to_inbox(request: Request) -> Response:
    return RedirectResponse("/inbox/", status_code=307)


def routes() -> list[BaseRoute]:
    """Everything this module serves, for ``create_app`` to mount (before its 404 handler)."""
    out: list[BaseRoute] = [Route("/", _to_inbox, methods=["GET"])]
    if INBOX_DIR.is_dir():
        out.append(Mount("/inbox", app=HeaderedStatic(directory=INBOX_DIR, headers=INBOX_HEADERS)))
    else:
        log.warning("agent inbox files not found at %s: /inbox/ is not served", INBOX_DIR)
    if QA_DIR.is_dir():  # the QA page imports the inbox's modules, so the same headers apply
        out.append(Mount("/qa", app=HeaderedStatic(directory=QA_DIR, headers=INBOX_HEADERS)))
    else:
        log.warning("QA page files not found at %s: /qa/ is not served", QA_DIR)
    if VISITOR_DIST.is_dir():
        out.append(
            Mount("/widget", app=HeaderedStatic(directory=VISITOR_DIST, headers=WIDGET_HEADERS))
        )
    else:
        log.warning("visitor widget build not found at %s: /widget/ is not served", VISITOR_DIST)
    return out
