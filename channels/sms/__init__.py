"""SMS channel: a Kannel gateway and Twilio-compatible provider webhooks.

Theory of operation
-------------------
Customers text one of our numbers; the message reaches us over HTTP, either from Kannel's
smsbox (its get-url) or from a cloud provider's webhook. Both land in routes from
:func:`sms_routes`, which the hub mounts (it owns the web app) and gives its ``Sink``.

1. Edge checks (``routes``): Kannel's get-url may carry a shared ``token``; Kannel DLR URLs
   carry an HMAC of our message id; provider webhooks carry ``X-Twilio-Signature``, checked in
   constant time, and each accepted signature is remembered for ``replay_window`` so a captured
   request (say an old START after a STOP) cannot be replayed. Failures answer 401 and log.
2. Pure parsing (``kannel_parse``, ``twilio_parse``): raw query/form -> :class:`Inbound` or
   :class:`DeliveryReport`; malformed input raises ``ParseError(field=...)`` -> 400. Numbers
   are normalized to E.164 (``channels.addresses.normalize_phone``, default region from
   config) so one person's SMS, calls and faxes meet on one contact. ``external_id`` is stable
   across gateway retries (Kannel's message UUID, Twilio's MessageSid).
3. Pipeline (``channel.SmsChannel.accept``): concatenated parts wait in a ``PartsStore`` until
   complete (``concat``; partial groups are ingested by ``run()`` after ``concat_timeout``),
   MMS media is downloaded into attachments, keywords (``keywords``: STOP, ARRÊT, BAJA, START,
   HELP...) update the ``OptOutStore``, then the hub's sink commits. A sink failure -> 503 so
   the gateway retries; nothing is acknowledged before it is stored.
4. Sending (``SmsChannel.send``): refuses opted-out numbers (``sms_opted_out``), over-long
   texts, and bursts beyond the per-number token bucket (``sms_rate_limited``, retry-after);
   dedupes by idempotency key; then Kannel ``sendsms`` (``kannel_client``, with a signed
   dlr-url) or the provider's REST API (``twilio_client``). HTTP failures map to
   Transient/Permanent channel errors.
5. Delivery reports (Kannel DLR, provider status callbacks) become ``InboundKind.EVENT`` items
   (``metadata["event"] == "delivery_report"``, ``status`` queued/sent/delivered/failed) tied to
   the conversation through the ``SentStore``.

``segments.count_segments`` gives the GSM-7/UCS-2 encoding and segment count the inbox shows
before an agent sends. All state lives behind the Protocols in ``stores`` (in-memory
implementations for tests; the hub backs them with its database).

Wiring in the hub
-----------------
``channel = SmsChannel(SmsConfig(...), stores=SmsStores(<DB-backed stores>))``; mount
``Mount("/channels/sms/<id>", routes=sms_routes(channel, sink))``; run ``channel.run(sink)``
in the lifespan (it ingests stale partial long messages); call ``channel.send(outbound)`` for
replies and ``SmsChannel.segments(text)`` for the inbox counter; ``await channel.aclose()``
at shutdown. Kannel's ``sms-service`` uses ``get-url = KANNEL_GET_URL_TEMPLATE.format(base=
<public URL of /kannel/inbound>)`` (+ ``&token=...`` when ``inbound_token`` is set) and
``max-messages = 0`` (our empty answer must not be texted back); ``smsbox`` should set
``http-request-retry`` / ``http-queue-delay`` so a 503 is retried. Leave
``sms-combine-concatenated-mo`` at its default (Kannel joins parts itself) or disable it and
let this channel join them; both work.
"""

from channels.sms.channel import RateLimited, SmsChannel, report_to_inbound
from channels.sms.kannel_parse import (
    KANNEL_GET_URL_TEMPLATE,
    parse_kannel_dlr,
    parse_kannel_inbound,
    parse_udh,
)
from channels.sms.keywords import KeywordAction, KeywordConfig
from channels.sms.models import (
    DeliveryReport,
    DeliveryStatus,
    KannelConfig,
    SmsConfig,
    TwilioConfig,
)
from channels.sms.routes import sms_routes
from channels.sms.segments import SegmentInfo, SmsEncoding, count_segments
from channels.sms.signature import twilio_signature, verify_twilio_signature
from channels.sms.stores import SmsStores
from channels.sms.twilio_parse import parse_twilio_inbound, parse_twilio_status

__all__ = [
    "KANNEL_GET_URL_TEMPLATE",
    "DeliveryReport",
    "DeliveryStatus",
    "KannelConfig",
    "KeywordAction",
    "KeywordConfig",
    "RateLimited",
    "SegmentInfo",
    "SmsChannel",
    "SmsConfig",
    "SmsEncoding",
    "SmsStores",
    "TwilioConfig",
    "count_segments",
    "parse_kannel_dlr",
    "parse_kannel_inbound",
    "parse_twilio_inbound",
    "parse_twilio_status",
    "parse_udh",
    "report_to_inbound",
    "sms_routes",
    "twilio_signature",
    "verify_twilio_signature",
]
