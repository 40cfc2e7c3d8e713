"""The hook for speech-to-text engines: call recordings in, timed transcript segments out.

Channels and the hub depend only on :class:`Transcriber`; an engine (a local model, a cloud
API) is plugged in by the composition root. The transcript's ``text`` is what gets indexed as a
``transcript`` interaction; the segments let the QA page jump the audio player to a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class TranscriptionError(Exception):
    """The engine failed; ``transient`` tells the caller whether a retry can help."""

    code = "transcription_failed"

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of speech: seconds from the start of the audio, and who spoke if known
    (e.g. ``"caller"``/``"agent"`` for a two-channel recording)."""

    start_s: float
    end_s: float
    text: str
    speaker: str | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start_s <= self.end_s:
            raise ValueError("segment times must satisfy 0 <= start_s <= end_s")


@dataclass(frozen=True, slots=True)
class Transcript:
    """The whole transcript; ``language`` is a BCP 47 tag such as ``"en"``."""

    segments: tuple[Segment, ...]
    language: str | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


@runtime_checkable
class Transcriber(Protocol):
    """Turns an audio file (WAV, MP3, Ogg ... as the engine supports) into a transcript."""

    async def transcribe(self, audio: Path, *, language: str | None = None) -> Transcript:
        """Transcribe ``audio``; raise :class:`TranscriptionError` on failure."""
        ...
