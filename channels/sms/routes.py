"""The HTTP endpoints gateways call, as Starlette routes the hub mounts.

``sms_routes(channel, sink)`` returns routes relative to the mount point (the hub mounts them
under ``/channels/sms/<channel id>``):

=========================  ======  ===================================================
``/kannel/inbound``        GET     smsbox get-url (``KANNEL_GET_URL_TEMPLATE``)
``/kannel/dlr``            GET     dlr-url built by ``send()`` (``mid`` + ``sig``)
``/twilio/inbound``        POST    Twilio-compatible inbound message webhook
``/twilio/status``         POST    Twilio-compatible status callback
=========================  ======  ===================================================

Answers: 200 when committed (empty body: smsbox would text any body back to the phone; for
Twilio an empty TwiML ``<Response/>``); 400 ``{code, message, data: {field}}`` for a malformed
request; 401 for a bad signature/token **and for a replay** (a Twilio signature already
accepted within ``replay_window``: code ``sms_replayed``), both logged at WARNING; 503 when
the hub could not commit, so the gateway retries (the replay nonce is released first).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.base import ChannelError, ParseError, Sink, TransientChannelError
from channels.sms.channel import SmsChannel
from channels.sms.kannel_parse import parse_kannel_dlr, parse_kannel_inbound, parse_query
from channels.sms.signature import (
    verify_dlr_token,
    verify_shared_token,
    verify_twilio_signature,
)
from channels.sms.twilio_parse import parse_form, parse_twilio_inbound, parse_twilio_status

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
Handler = Callable[[Request], Awaitable[Response]]


def error_response(status: int, code: str, message: str, **data: Any) -> JSONResponse:
    """The project's error shape."""
    return JSONResponse({"code": code, "message": message, "data": data}, status_code=status)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _commit(work: Awaitable[object], what: str) -> Response | None:
    """Run the sink call; map failures to the status that makes the gateway do the right thing."""
    try:
        await work
    except ParseError as exc:
        log.warning("sms: %s refused: %s (field %s)", what, exc, exc.field)
        return error_response(400, exc.code, str(exc), field=exc.field)
    except TransientChannelError as exc:
        log.warning("sms: %s not committed, gateway will retry: %s", what, exc)
        return error_response(503, exc.code, "temporarily unable to store the message")
    except ChannelError as exc:
        log.error("sms: %s rejected by the hub: %s", what, exc)
        return error_response(422, exc.code, str(exc))
    except Exception:
        log.exception("sms: %s failed, gateway will retry", what)
        return error_response(503, "sms_ingest_failed", "temporarily unable to store the message")
    return None


async def _raw_params(request: Request) -> bytes:
    """Query string, or the form body of a POST (Kannel's post-url / a proxy)."""
    if request.method == "POST":
        return await request.body()
    return bytes(request.scope.get("query_string", b""))


def kannel_handlers(channel: SmsChannel, sink: Sink) -> tuple[Handler, Handler]:
    """(inbound, dlr) handlers for Kannel; usable without Starlette routing."""
    config = channel.config
    kannel = config.kannel

    async def inbound(request: Request) -> Response:
        raw = await _raw_params(request)
        if kannel is not None and kannel.inbound_token:
            given = parse_query(raw).get("token", b"").decode("latin-1") or None
            if not verify_shared_token(kannel.inbound_token, given):
                log.warning(
                    "sms: kannel inbound with a bad token from %s refused", _client(request)
                )
                return error_response(401, "sms_bad_token", "missing or wrong token")
        try:
            message = parse_kannel_inbound(
                raw, channel_id=channel.channel_id, default_region=config.default_region
            )
        except ParseError as exc:
            log.warning("sms: malformed kannel inbound: %s (field %s)", exc, exc.field)
            return error_response(400, exc.code, str(exc), field=exc.field)
        failure = await _commit(channel.accept(sink, message), f"inbound {message.external_id}")
        return failure or Response(b"", status_code=200, media_type="text/plain")

    async def dlr(request: Request) -> Response:
        raw = await _raw_params(request)
        try:
            report = parse_kannel_dlr(raw, default_region=config.default_region)
        except ParseError as exc:
            log.warning("sms: malformed kannel DLR: %s (field %s)", exc, exc.field)
            return error_response(400, exc.code, str(exc), field=exc.field)
        sig = parse_query(raw).get("sig", b"").decode("latin-1") or None
        if kannel is None or not verify_dlr_token(kannel.dlr_secret, report.message_id, sig):
            log.warning("sms: forged kannel DLR from %s refused", _client(request))
            return error_response(401, "sms_bad_signature", "DLR signature does not match")
        failure = await _commit(channel.accept_report(sink, report), f"DLR {report.message_id}")
        return failure or Response(b"", status_code=200, media_type="text/plain")

    return inbound, dlr


def signed_url(request: Request, webhook_base_url: str | None) -> str:
    """The URL the provider signed: the public base (behind a proxy) or the request's own."""
    if not webhook_base_url:
        return str(request.url)
    query = request.url.query
    return webhook_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def twilio_handlers(channel: SmsChannel, sink: Sink) -> tuple[Handler, Handler]:
    """(inbound, status) handlers for a Twilio-compatible provider."""
    config = channel.config
    twilio = config.twilio

    async def authenticate(request: Request) -> tuple[list[tuple[str, str]], str] | Response:
        """Signature then replay check; returns (form pairs, nonce key) or an error response."""
        try:
            pairs = parse_form(await request.body())
        except ParseError as exc:
            return error_response(400, exc.code, str(exc), field=exc.field)
        signature = request.headers.get("x-twilio-signature")
        url = signed_url(request, twilio.webhook_base_url if twilio else None)
        if twilio is None or not verify_twilio_signature(twilio.auth_token, url, pairs, signature):
            log.warning(
                "sms: forged twilio webhook refused (bad signature) from %s on %s",
                _client(request), request.url.path,
            )  # fmt: skip
            return error_response(401, "sms_bad_signature", "X-Twilio-Signature does not match")
        assert signature is not None
        now = channel.clock()
        key = f"twilio:{signature.strip()}"
        fresh = await channel.stores.nonces.claim(
            key, expires_at=now + config.replay_window, now=now
        )
        if not fresh:
            log.warning(
                "sms: replayed twilio webhook refused from %s on %s",
                _client(request), request.url.path,
            )  # fmt: skip
            return error_response(401, "sms_replayed", "this webhook was already accepted")
        return pairs, key

    async def finish(key: str, failure: Response | None, ok: Response) -> Response:
        if failure is not None:
            await channel.stores.nonces.release(key)
            return failure
        return ok

    async def inbound(request: Request) -> Response:
        auth = await authenticate(request)
        if isinstance(auth, Response):
            return auth
        pairs, key = auth
        try:
            message = parse_twilio_inbound(
                dict(pairs), channel_id=channel.channel_id, default_region=config.default_region
            )
        except ParseError as exc:
            log.warning("sms: malformed twilio inbound: %s (field %s)", exc, exc.field)
            return await finish(
                key, error_response(400, exc.code, str(exc), field=exc.field), Response()
            )
        failure = await _commit(channel.accept(sink, message), f"inbound {message.external_id}")
        return await finish(key, failure, Response(EMPTY_TWIML, media_type="text/xml"))

    async def status(request: Request) -> Response:
        auth = await authenticate(request)
        if isinstance(auth, Response):
            return auth
        pairs, key = auth
        try:
            report = parse_twilio_status(dict(pairs), default_region=config.default_region)
        except ParseError as exc:
            log.warning("sms: malformed twilio status: %s (field %s)", exc, exc.field)
            return await finish(
                key, error_response(400, exc.code, str(exc), field=exc.field), Response()
            )
        failure = await _commit(channel.accept_report(sink, report), f"status {report.message_id}")
        return await finish(key, failure, Response(b"", status_code=200))

    return inbound, status


def sms_routes(channel: SmsChannel, sink: Sink) -> list[Route]:
    """Routes for the channel's provider, relative to where the hub mounts them."""
    if channel.config.provider == "kannel":
        inbound, dlr = kannel_handlers(channel, sink)
        return [
            Route("/kannel/inbound", inbound, methods=["GET", "POST"]),
            Route("/kannel/dlr", dlr, methods=["GET", "POST"]),
        ]
    inbound, status = twilio_handlers(channel, sink)
    return [
        Route("/twilio/inbound", inbound, methods=["POST"]),
        Route("/twilio/status", status, methods=["POST"]),
    ]
