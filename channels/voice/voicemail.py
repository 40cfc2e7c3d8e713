"""Pure conversions for the items a call adds beyond :mod:`channels.voice.inbound`.

- ``<id>:voicemail``: the caller's voicemail (WAV attachment, metadata ``event`` = ``voicemail``)
- ``<id>:recording:<name>``: the recording of a later agent connection (after a blind transfer
  each connection has its own bridge and recording; the first keeps ``<id>:recording``)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from channels.base import Address, Attachment, ChannelKind, Inbound, InboundKind
from channels.voice.callstate import Call, safe_name
from channels.voice.inbound import recording_inbound


def voicemail_inbound(call: Call, sender: Address, name: str, wav: bytes, *, channel_id: str,
                      received_at: datetime) -> Inbound:
    return Inbound(
        channel=ChannelKind.VOICE,
        channel_id=channel_id,
        external_id=f"{call.id}:voicemail",
        sender=sender,
        kind=InboundKind.EVENT,
        thread_refs=(call.id,),
        received_at=received_at,
        attachments=(Attachment(f"{name}.wav", "audio/wav", wav),),
        metadata={"event": "voicemail", "recording": name, "queue": call.queue,
                  "ivr_path": list(call.ivr_path), "digits": call.digits},
    )


def leg_recording_inbound(call: Call, sender: Address, name: str, wav: bytes, *,
                          channel_id: str, received_at: datetime) -> Inbound:
    """A bridge recording by name: the first one as usual, later ones with their own id."""
    item = recording_inbound(replace(call, recording=name), sender, wav, channel_id=channel_id,
                             received_at=received_at)
    if name == f"call-{safe_name(call.id)}":
        return item
    return replace(item, external_id=f"{call.id}:recording:{name}")
