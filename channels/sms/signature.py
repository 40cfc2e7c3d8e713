"""Webhook authentication: Twilio's ``X-Twilio-Signature`` and our own signed Kannel DLR URLs.

Twilio signs ``base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))`` with
the POST parameters sorted by name (repeated names: values sorted too). The URL is the one the
provider called, including the query string; Twilio's own validators also accept it with or
without the scheme's default port, and so do we. Comparison is constant-time.

Kannel cannot sign anything, so ``send()`` adds ``mid`` and ``sig = HMAC-SHA256(dlr_secret,
mid)`` to each message's dlr-url: a receipt for a message we never sent is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature Twilio computes for a request to ``url`` carrying form ``params``."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, plus with the default port added or removed."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    variants = [url]
    if default is None or parts.hostname is None:
        return variants
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if parts.port is None:
        netloc = f"{prefix}{host}:{default}"
    elif parts.port == default:
        netloc = f"{prefix}{host}"
    else:
        return variants
    variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


def verify_twilio_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> bool:
    """True when ``signature`` matches; every candidate is compared in constant time."""
    if not signature or not auth_token:
        return False
    items = list(params)
    given = signature.strip().encode("ascii", "replace")
    ok = False
    for candidate in _url_variants(url):
        expected = twilio_signature(auth_token, candidate, items).encode("ascii")
        ok |= hmac.compare_digest(expected, given)
    return ok


def dlr_token(secret: str, message_id: str) -> str:
    """The ``sig`` we put next to ``mid`` in a Kannel dlr-url."""
    mac = hmac.new(secret.encode(), message_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode("ascii")


def verify_dlr_token(secret: str, message_id: str, token: str | None) -> bool:
    """Constant-time check of a dlr-url ``sig``."""
    if not token:
        return False
    expected = dlr_token(secret, message_id).encode()
    return hmac.compare_digest(expected, token.encode("ascii", "replace"))


def verify_shared_token(expected: str, given: str | None) -> bool:
    """Constant-time check of the optional get-url ``token``."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
