"""``contacthub demo``: a small contact center with agents, queues and live-looking work."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels.base import Address, AddressKind, ChannelKind, Inbound, InboundKind
from hub.actions.ingest import Ingestor
from hub.config.apply import ApplyReport, apply_config
from hub.config.load import load_config
from hub.db.engine import SessionFactory

log = logging.getLogger(__name__)

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
DEMO_PASSWORD = "contacthub-demo"  # noqa: S105  (printed to the user: it is a demo)
DEMO_SITE_KEY = "demo"  # the key widget/visitor/dist/demo.html embeds
ADMIN_EMAIL = "admin@example.com"


def _item(
    channel: ChannelKind,
    sender: Address,
    ext: str,
    text: str,
    minutes_ago: int,
    *,
    channel_id: str,
    sender_name: str | None = None,
    subject: str | None = None,
    kind: InboundKind = InboundKind.MESSAGE,
    metadata: dict[str, Any] | None = None,
) -> Inbound:
    return Inbound(
        channel=channel,
        channel_id=channel_id,
        external_id=ext,
        sender=sender,
        text=text,
        kind=kind,
        sender_name=sender_name,
        subject=subject,
        received_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        metadata=metadata or {},
    )


def demo_inbound() -> list[Inbound]:
    """Work arriving on every channel; one caller also texts and faxes (one contact)."""
    phone = Address(AddressKind.PHONE, "+14155550123")
    return [
        _item(
            ChannelKind.WEBCHAT,
            Address(AddressKind.VISITOR, "demo-visitor-0001"),
            "demo-w1",
            "Hi! Can I change the delivery address of my order?",
            14,
            channel_id=DEMO_SITE_KEY,
            sender_name="Website visitor",
        ),
        _item(
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "maria.lopez@example.org"),
            "<demo-1@example.org>",
            "Hello,\n\nI was charged twice, please refund one payment.\n\nMaria",
            40,
            channel_id="support@example.com",
            subject="Double charge on invoice 2291",
            sender_name="Maria Lopez",
        ),
        _item(
            ChannelKind.EMAIL,
            Address(AddressKind.EMAIL, "ops@bigcustomer.example"),
            "<demo-2@bigcustomer.example>",
            "Your API has been down for 10 minutes.",
            6,
            channel_id="support@example.com",
            subject="Outage?",
            sender_name="Ops team",
        ),
        _item(
            ChannelKind.VOICE,
            phone,
            "demo-call-1",
            "",
            3,
            kind=InboundKind.CALL,
            channel_id="+14155550199",
            sender_name="Sam Carter",
            metadata={"queue": "technical", "ivr_path": ["technical"], "digits": "2"},
        ),
        _item(
            ChannelKind.SMS,
            phone,
            "demo-sms-1",
            "I called earlier about the router, still broken",
            2,
            channel_id="+14155550100",
        ),
        _item(
            ChannelKind.FAX,
            phone,
            "demo-fax-1",
            "PURCHASE ORDER 7781 - 12 units",
            30,
            channel_id="+14155550177",
            subject="Fax from +1 415-555-0123",
        ),
    ]


async def seed(sessions: SessionFactory, ingest: Ingestor) -> ApplyReport:
    """Apply the demo configuration and feed demo work through the real ingest (idempotent)."""
    report = await apply_config(
        sessions, load_config(DEMO_CONFIG), env={"CONTACTHUB_DEMO_PASSWORD": DEMO_PASSWORD}
    )
    for item in demo_inbound():
        await ingest(item)
    return report
