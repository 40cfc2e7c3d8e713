"""Pure conversions from call facts to the hub's :class:`Inbound` items.

A call produces up to three items, all sharing the caller channel's unique id:

- ``CALL`` (external_id = the id) when the call is queued: routable work, with CTI metadata
  (IVR path, digits, dialed number, queue);
- ``EVENT`` ``<id>:end`` when it ends (abandoned or not, wait time);
- ``EVENT`` ``<id>:recording`` carrying the bridge recording as a WAV attachment.

Events reference the call in ``thread_refs`` so the hub files them in the same conversation.
A withheld caller id (empty, "anonymous", "unknown") is normal telephony, not bad input: the sender
is then the phone address ``anonymous``. Anything else that is not a phone number is a
:class:`ParseError` on ``caller.number``.
"""

from __future__ import annotations

from datetime import datetime

from channels.addresses import normalize_phone
from channels.base import Address, AddressKind, Attachment, ChannelKind, Inbound, InboundKind
from channels.voice.call import Call
from channels.voice.events import ChannelInfo

ANONYMOUS = "anonymous"
_WITHHELD = {"", "anonymous", "unknown", "restricted", "private", "unavailable"}


def caller_address(channel: ChannelInfo, default_region: str) -> Address:
    """E.164 of the caller id number; raises ParseError(field="phone") for garbage."""
    number = channel.caller.number.strip()
    if number.lower() in _WITHHELD:
        return Address(AddressKind.PHONE, ANONYMOUS)
    return Address(AddressKind.PHONE, normalize_phone(number, default_region))


def call_inbound(
    call: Call,
    caller: ChannelInfo,
    sender: Address,
    *,
    channel_id: str,
    received_at: datetime,
) -> Inbound:
    """The routable work item for a queued call; ``sender`` comes from :func:`caller_address`."""
    return Inbound(
        channel=ChannelKind.VOICE,
        channel_id=channel_id,
        external_id=call.id,
        sender=sender,
        kind=InboundKind.CALL,
        sender_name=caller.caller.name or None,
        recipient=caller.exten or None,
        received_at=received_at,
        metadata={
            "ivr_path": list(call.ivr_path),
            "digits": call.digits,
            "queue": call.queue,
            "dialed": caller.exten,
            "asterisk_channel": caller.name,
        },
    )


def end_inbound(
    call: Call,
    sender: Address,
    *,
    channel_id: str,
    received_at: datetime,
    abandoned: bool,
    wait_s: float,
) -> Inbound:
    return Inbound(
        channel=ChannelKind.VOICE,
        channel_id=channel_id,
        external_id=f"{call.id}:end",
        sender=sender,
        kind=InboundKind.EVENT,
        thread_refs=(call.id,),
        received_at=received_at,
        metadata={
            "event": "abandoned" if abandoned else "ended",
            "reason": call.end_reason,
            "wait_s": round(wait_s, 3),
            "state_reached": "agent" if call.answered_at is not None else "queue",
            "ivr_path": list(call.ivr_path),
            "digits": call.digits,
            "queue": call.queue,
        },
    )


def recording_inbound(
    call: Call,
    sender: Address,
    wav: bytes,
    *,
    channel_id: str,
    received_at: datetime,
) -> Inbound:
    name = call.recording or f"call-{call.id}"
    return Inbound(
        channel=ChannelKind.VOICE,
        channel_id=channel_id,
        external_id=f"{call.id}:recording",
        sender=sender,
        kind=InboundKind.EVENT,
        thread_refs=(call.id,),
        received_at=received_at,
        attachments=(Attachment(f"{name}.wav", "audio/wav", wav),),
        metadata={"event": "recording", "recording": name},
    )
