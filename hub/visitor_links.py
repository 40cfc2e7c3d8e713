"""Signed, short-lived links to the files of a visitor's web chat (served by hub.visitor_media).

A visitor has no hub session, only the secret visitor token its socket proved, so the history the
widget fetches over that socket carries one URL per file:
``/widget/files/<attachment id>?c=<conversation>&v=<visitor>&k=<sha256>&e=<expiry>&s=<mac>``
where ``mac`` is an HMAC-SHA256, keyed by a key derived from the hub secret, of
``attachment|conversation|visitor|sha256|expiry``. The link states "this visitor may read these
bytes of this conversation until then"; no table of issued links, and a changed character is a
different, unsigned statement. Expiry is rounded up to :data:`URL_BUCKET_S` so reloads within
that window get the same URL (and the browser's cached copy).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlencode

from hub.settings import Settings

URL_TTL_S = 3600
URL_BUCKET_S = 600
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class FileClaims:
    """What a signed URL states: this visitor may read this attachment until ``expires``."""

    attachment_id: str
    conversation_id: str
    visitor_id: str
    sha256: str
    expires: int


class LinkRefused(Exception):
    """A link that does not grant access: ``status``/``code`` are the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def not_found() -> LinkRefused:
    return LinkRefused(404, "not_found", "no such file")


@lru_cache(maxsize=4)
def _mac_key(secret: str) -> bytes:
    return hashlib.sha256(b"contacthub widget file\x00" + secret.encode()).digest()


def _mac(settings: Settings, claims: FileClaims) -> str:
    message = "|".join(
        [claims.attachment_id, claims.conversation_id, claims.visitor_id, claims.sha256,
         str(claims.expires)]
    )  # fmt: skip
    key = _mac_key(settings.resolved_secret())
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def expiry(now: float | None = None) -> int:
    """At least :data:`URL_TTL_S` from ``now``, rounded up to a :data:`URL_BUCKET_S` step."""
    at = (time.time() if now is None else now) + URL_TTL_S
    return int(math.ceil(at / URL_BUCKET_S) * URL_BUCKET_S)


def file_url(settings: Settings, claims: FileClaims) -> str:
    """The signed URL, relative to the hub's URL (the widget resolves it against its server)."""
    query = urlencode(
        {"c": claims.conversation_id, "v": claims.visitor_id, "k": claims.sha256,
         "e": claims.expires, "s": _mac(settings, claims)}
    )  # fmt: skip
    return f"/widget/files/{quote(claims.attachment_id, safe='')}?{query}"


def parse_claims(
    settings: Settings, attachment_id: str, params: Mapping[str, str], now: float
) -> FileClaims:
    """The URL's claims if the hub signed them and they have not expired. A malformed or
    forged link is 404 (it cannot probe what exists); an expired genuine one is 410."""
    values = {k: str(params.get(k) or "") for k in ("c", "v", "k", "e", "s")}
    if not (
        _ID.match(attachment_id)
        and _ID.match(values["c"])
        and _ID.match(values["v"])
        and _HEX64.match(values["k"])
        and values["e"].isdigit()
        and len(values["e"]) <= 12
        and _HEX64.match(values["s"])
    ):
        raise not_found()
    claims = FileClaims(attachment_id, values["c"], values["v"], values["k"], int(values["e"]))
    if not hmac.compare_digest(_mac(settings, claims), values["s"]):
        raise not_found()
    if claims.expires < now:
        raise LinkRefused(410, "link_expired", "this link expired: fetch the chat history again")
    return claims
