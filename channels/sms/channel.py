"""The SMS channel instance: inbound pipeline, delivery reports and ``send()``.

Inbound (called by the web routes with a parsed :class:`Inbound`):
1. a part of a concatenated message is parked in the PartsStore until its siblings arrive;
   ``run()`` sweeps groups older than ``concat_timeout`` and ingests them as partial;
2. a keyword message (STOP, ARRÊT, START, HELP...) updates the OptOutStore first (honouring
   STOP must not depend on the hub's ingest succeeding), then is ingested like any message with
   ``metadata["keyword"]`` and ``metadata["keyword_action"]``; an optional confirmation reply
   (``keyword_replies``) goes out afterwards, bypassing the opt-out check;
3. the hub's sink commits it; any sink failure propagates so the route answers 5xx and the
   gateway retries (the same ``external_id`` dedupes).

Delivery reports become ``InboundKind.EVENT`` items with ``metadata["event"] ==
"delivery_report"`` (see :func:`report_to_inbound`).

``send()``: phone address check, opt-out check (``sms_opted_out``), segment limit, idempotency
(a second send with the same key returns the first result), per-number token bucket
(``sms_rate_limited`` with ``retry_after``), then Kannel or the Twilio-compatible REST API.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import httpx

from channels.addresses import normalize_phone
from channels.base import (
    Address,
    AddressKind,
    Attachment,
    ChannelError,
    ChannelKind,
    Inbound,
    InboundKind,
    IngestReceipt,
    Outbound,
    ParseError,
    PermanentChannelError,
    SendResult,
    Sink,
    TransientChannelError,
)
from channels.sms.concat import concat_of, join_parts, to_part
from channels.sms.kannel_client import kannel_send
from channels.sms.keywords import KeywordAction
from channels.sms.models import DeliveryReport, MediaRef, SmsConfig
from channels.sms.ratelimit import RateLimiter, TokenBucketLimiter
from channels.sms.segments import SegmentInfo, count_segments
from channels.sms.stores import ALL_CHANNELS, OptOutRecord, SentRecord, SmsStores
from channels.sms.twilio_client import fetch_media, twilio_send

log = logging.getLogger(__name__)


class RateLimited(TransientChannelError):
    """Too many messages to one number; retry after ``retry_after`` seconds."""

    code = "sms_rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def report_to_inbound(
    report: DeliveryReport, *, channel_id: str, sent: SentRecord | None
) -> Inbound:
    """A delivery report as an event the hub records on the outbound message's conversation."""
    phone = (sent.to if sent else None) or report.recipient
    if not phone or not phone.startswith("+"):
        raise ParseError("delivery report names no handset number", field="to")
    metadata: dict[str, object] = {
        "event": "delivery_report",
        "provider": report.provider,
        "message_id": report.message_id,
        "status": report.status.value,
        "raw_status": report.raw_status,
    }
    if report.detail:
        metadata["detail"] = report.detail
    if report.error_code:
        metadata["error_code"] = report.error_code
    refs: tuple[str, ...] = (report.message_id,)
    if sent is not None:
        metadata["conversation_id"] = sent.conversation_id
        metadata["idempotency_key"] = sent.idempotency_key
        refs += (sent.conversation_id,)
    return Inbound(
        channel=ChannelKind.SMS,
        channel_id=channel_id,
        external_id=f"dlr:{report.provider}:{report.message_id}:{report.raw_status}",
        sender=Address(AddressKind.PHONE, phone),
        kind=InboundKind.EVENT,
        received_at=report.received_at,
        thread_refs=refs,
        auto_generated=True,
        metadata=metadata,
    )


class SmsChannel:
    """One SMS number/account. Build once in the hub; share it between routes and ``run``."""

    kind = ChannelKind.SMS

    def __init__(
        self,
        config: SmsConfig,
        *,
        stores: SmsStores | None = None,
        http: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        keyword_replies: Mapping[KeywordAction, str] | None = None,
    ) -> None:
        self.config = config
        self.channel_id = config.channel_id
        self.stores = stores or SmsStores()
        self._own_http = http is None
        self.http = http or httpx.AsyncClient()
        self.limiter = limiter or TokenBucketLimiter(config.rate_per_second, config.rate_burst)
        self.clock = clock
        self.keyword_replies = MappingProxyType(dict(keyword_replies or {}))

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    @staticmethod
    def segments(text: str) -> SegmentInfo:
        """Encoding and segment count for the inbox, before sending."""
        return count_segments(text)

    # inbound -----------------------------------------------------------------------------

    async def run(self, sink: Sink) -> None:
        """Ingest concatenated messages whose parts stopped arriving; until cancelled."""
        while True:
            await asyncio.sleep(self.config.concat_sweep_interval)
            try:
                await self.flush_expired(sink)
            except Exception as exc:  # keep sweeping; the parts are still stored
                log.warning("sms %s: flushing partial messages failed: %r", self.channel_id, exc)

    async def flush_expired(self, sink: Sink) -> int:
        """Ingest every part group older than the timeout as a partial message.

        Parts are removed only after the sink committed, so a failing ingest loses nothing.
        """
        now = self.clock()
        flushed = 0
        for group in await self.stores.parts.expired(now - self.config.concat_timeout):
            parts = await self.stores.parts.get(group)
            if not parts:
                continue
            inbound = join_parts(parts, channel_id=self.channel_id)
            log.warning(
                "sms %s: long message incomplete after %.0fs, ingesting %d of %d parts as %s",
                self.channel_id, self.config.concat_timeout, len(parts), parts[0].total,
                inbound.external_id,
            )  # fmt: skip
            await sink(inbound)
            await self.stores.parts.pop(group, tombstone_until=now + self._tombstone())
            flushed += 1
        return flushed

    def _tombstone(self) -> float:
        return max(self.config.concat_timeout * 4, 600.0)

    async def accept(self, sink: Sink, inbound: Inbound) -> IngestReceipt | None:
        """Run one parsed inbound message through the pipeline; None while parts are pending.

        For a concatenated message the parts leave the store only after the sink committed the
        joined message: when the sink fails, the gateway's retry of the last part completes the
        group again.
        """
        group: str | None = None
        info = concat_of(inbound)
        if info is not None:
            part = to_part(inbound, info, self.clock())
            held = await self.stores.parts.add(part)
            if held is None:
                log.info("sms %s: part %s already joined, ignored", self.channel_id, part.part_id)
                return None
            if len(held) < part.total:
                log.debug("sms %s: part %d/%d held", self.channel_id, part.seq, part.total)
                return None
            inbound, group = join_parts(held, channel_id=self.channel_id), part.group
        receipt = await self._ingest(sink, inbound)
        if group is not None:
            tombstone = self.clock() + self._tombstone()
            await self.stores.parts.pop(group, tombstone_until=tombstone)
        return receipt

    async def _ingest(self, sink: Sink, inbound: Inbound) -> IngestReceipt:
        if inbound.metadata.get("media"):
            inbound = await self._with_media(inbound)
        match = self.config.keywords.classify(inbound.text)
        if match is None:
            return await sink(inbound)
        keyword, action = match
        await self._record_keyword(inbound, keyword, action)
        marked = replace(
            inbound, metadata={**inbound.metadata, "keyword": keyword, "keyword_action": action}
        )
        receipt = await sink(marked)
        if receipt.created:
            await self._confirm_keyword(inbound.sender.value, action)
        return receipt

    async def accept_report(self, sink: Sink, report: DeliveryReport) -> IngestReceipt:
        """Ingest a delivery report, tied to the message we sent when we know it."""
        sent = await self.stores.sent.by_message_id(report.message_id)
        if sent is None:
            log.info("sms %s: receipt for unknown message %s", self.channel_id, report.message_id)
        return await sink(report_to_inbound(report, channel_id=self.channel_id, sent=sent))

    async def _with_media(self, inbound: Inbound) -> Inbound:
        twilio = self.config.twilio
        if twilio is None or not twilio.fetch_media:
            return inbound
        attachments: list[Attachment] = []
        failed = 0
        raw_media = inbound.metadata.get("media", ())
        for index, item in enumerate(raw_media):
            ref = MediaRef(url=str(item["url"]), content_type=str(item["content_type"]))
            try:
                attachments.append(await fetch_media(self.http, twilio, ref, index))
            except (ChannelError, httpx.HTTPError) as exc:
                failed += 1
                log.warning("sms %s: MMS media %d not fetched: %s", self.channel_id, index, exc)
        metadata = dict(inbound.metadata)
        if failed:
            metadata["media_fetch_failed"] = failed  # URLs stay in metadata["media"]
        return replace(
            inbound, attachments=inbound.attachments + tuple(attachments), metadata=metadata
        )

    async def _record_keyword(self, inbound: Inbound, keyword: str, action: KeywordAction) -> None:
        phone, at = inbound.sender.value, inbound.received_at
        log.info("sms %s: keyword %s (%s) received", self.channel_id, keyword, action.value)
        if action is KeywordAction.HELP:
            return
        if action is KeywordAction.OPT_IN:  # START clears this channel and a STOPALL
            for scope in (self.channel_id, ALL_CHANNELS):
                await self.stores.opt_outs.record(OptOutRecord(scope, phone, False, keyword, at))
            return
        scope = ALL_CHANNELS if action is KeywordAction.OPT_OUT_ALL else self.channel_id
        await self.stores.opt_outs.record(OptOutRecord(scope, phone, True, keyword, at))

    async def _confirm_keyword(self, phone: str, action: KeywordAction) -> None:
        text = self.keyword_replies.get(action)
        if not text:
            return
        message_id = self._message_id(f"keyword:{action.value}:{phone}:{self.clock()}")
        try:
            await self._deliver(phone, text, message_id)
        except ChannelError as exc:
            log.warning("sms %s: keyword confirmation not sent: %s", self.channel_id, exc)

    # outbound ----------------------------------------------------------------------------

    def _message_id(self, key: str) -> str:
        return hashlib.sha256(f"{self.channel_id}\x00{key}".encode()).hexdigest()[:32]

    async def _checked(self, outbound: Outbound) -> tuple[str, SegmentInfo]:
        """The checks a reply fails for certain: address, opt-out, attachments, length.
        Returns the E.164 recipient and the segment info."""
        if outbound.to.kind is not AddressKind.PHONE:
            raise PermanentChannelError("SMS needs a phone number", code="sms_bad_address")
        try:
            to = normalize_phone(outbound.to.value, self.config.default_region)
        except ParseError as exc:
            raise PermanentChannelError(str(exc), code="sms_bad_address") from exc
        if await self.stores.opt_outs.is_opted_out(self.channel_id, to):
            raise PermanentChannelError(
                "This customer texted STOP and has opted out of SMS from this number; "
                "nothing was sent. They must text START to receive messages again.",
                code="sms_opted_out",
            )
        if outbound.attachments:
            raise PermanentChannelError(
                "sending MMS attachments is not supported", code="sms_attachments_unsupported"
            )
        info = count_segments(outbound.text)
        if not outbound.text or info.segments > self.config.max_segments:
            raise PermanentChannelError(
                f"message is {info.segments} segments; the limit is {self.config.max_segments}",
                code="sms_too_long",
            )
        return to, info

    async def check_send(self, outbound: Outbound) -> None:
        """:class:`channels.base.SendPrecheck`: refuse at once what ``send`` would refuse, so
        the agent sees why while still in the composer."""
        await self._checked(outbound)

    async def send(self, outbound: Outbound) -> SendResult:
        """Deliver one reply (see the module docstring for the checks, in order)."""
        to, info = await self._checked(outbound)
        earlier = await self.stores.sent.by_idempotency_key(
            self.channel_id, outbound.idempotency_key
        )
        if earlier is not None:
            return SendResult(external_id=earlier.message_id, status="queued")
        wait = self.limiter.acquire(to, self.clock())
        if wait > 0:
            raise RateLimited(
                f"too many messages to this number; retry in {wait:.1f}s", retry_after=wait
            )
        message_id, status = await self._deliver(
            to, outbound.text, self._message_id(outbound.idempotency_key)
        )
        await self.stores.sent.remember(
            SentRecord(
                message_id=message_id,
                channel_id=self.channel_id,
                to=to,
                conversation_id=outbound.conversation_id,
                idempotency_key=outbound.idempotency_key,
                segments=info.segments,
                sent_at=datetime.now(UTC),
            )
        )
        return SendResult(external_id=message_id, status=status)

    async def _deliver(self, to: str, text: str, message_id: str) -> tuple[str, str]:
        """Hand one text to the configured gateway; return (message id, status)."""
        if self.config.provider == "kannel":
            assert self.config.kannel is not None
            encoding = count_segments(text).encoding
            status = await kannel_send(
                self.http, self.config.kannel, to=to, text=text,
                message_id=message_id, encoding=encoding,
            )  # fmt: skip
            return message_id, status
        assert self.config.twilio is not None
        sid, provider_status = await twilio_send(self.http, self.config.twilio, to=to, text=text)
        return sid, "sent" if provider_status == "sent" else "queued"
