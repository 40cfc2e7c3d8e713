"""The voice channel's settings and the errors its hub-facing controls raise.

Apart from :mod:`channels.voice.channel` so the per-call worker (:mod:`channels.voice.worker`)
can use them without importing the channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.base import PermanentChannelError
from channels.voice.ivr import IvrConfig


class AgentUnavailable(PermanentChannelError):
    """The offered agent did not take the call; ``reason`` is noanswer, busy, hangup, ..."""

    code = "agent_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(f"agent did not answer: {reason}")
        self.reason = reason


class CallGone(PermanentChannelError):
    code = "call_gone"


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    ari_url: str  # http://host:8088/ari
    user: str
    password: str
    app: str = "contacthub"
    channel_id: str = "voice"
    ivr: IvrConfig = field(default_factory=IvrConfig)
    ring_timeout: int = 15
    default_region: str = "US"
    delete_recordings: bool = True  # once the sink has the WAV, Asterisk's copy goes
    recording_wait_s: float = 30.0  # how long an ended call waits for its recording
    # an ended call whose recording's end event has not come after this long (and as often
    # again) asks ARI whether the recording is still live: the event can be lost (see
    # channels.voice.recordings)
    recording_check_s: float = 2.0
