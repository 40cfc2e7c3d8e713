"""Offline speech-to-text for call recordings with PocketSphinx (the PyPI wheel ships en-US).

Why this shape:

- **Off the event loop, in a separate process.** Decoding is CPU-bound C code that may hold the
  GIL for the length of a ``process_raw`` call; in a thread it would stall the hub's event loop
  (and with it the ARI call path). A one-worker process pool keeps the hub responsive, and a
  crash in the native decoder breaks only the pool (reported as a transient error; the next call
  starts a fresh worker). The worker keeps its decoder between jobs, so the model is loaded once.
- **Resampling.** The bundled acoustic model is 16 kHz; call audio is 8 kHz (Asterisk ``wav``).
  Voice activity detection runs at the source rate, then each speech region is upsampled to
  16 kHz by linear interpolation (exact 2x for telephone audio). Upsampling adds no information,
  so accuracy on narrow-band calls is limited: good enough to search, not a verbatim record.
- **Timed segments.** Each speech region the VAD finds becomes one :class:`Segment` with its
  start/end in seconds, so the QA page can seek the player to it.
- **Speakers.** A two-channel recording (one leg per channel) is decoded channel by channel and
  each segment carries the channel's speaker label (``caller``/``agent`` by default); a mono
  mix has no speaker.

Only PCM WAV is read (what Asterisk records); anything else is a permanent
:class:`TranscriptionError` so the hub does not retry it forever.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import math
import multiprocessing
import wave
from array import array
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder.transcribe import Segment, Transcript, TranscriptionError

log = logging.getLogger(__name__)

MODEL_RATE = 16_000
VAD_RATES = frozenset({8_000, 16_000, 32_000, 48_000})
LANGUAGES = frozenset({"en", "en-us"})
MAX_CHANNELS = 2

# (start_s, end_s, text, speaker, confidence): plain tuples cross the process boundary cheaply.
RawSegment = tuple[float, float, str, str | None, float | None]


def available() -> bool:
    """Whether the engine can run here (the ``pocketsphinx`` wheel is installed)."""
    try:
        import pocketsphinx  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


class BadAudioError(ValueError):
    """The file is not audio this engine reads; retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Pcm:
    """16-bit signed PCM, one array per channel."""

    rate: int
    channels: tuple[array[int], ...]

    @property
    def duration_s(self) -> float:
        return len(self.channels[0]) / self.rate if self.channels else 0.0


def read_wav(path: Path) -> Pcm:
    """Read a PCM WAV (8 or 16 bit, mono or stereo) into per-channel int16 arrays."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, n_ch = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadAudioError(f"not a PCM WAV file: {exc}") from None
    if not 1 <= n_ch <= MAX_CHANNELS:
        raise BadAudioError(f"{n_ch} channels; only mono or two-channel audio is supported")
    if rate < 4_000 or rate > 96_000:
        raise BadAudioError(f"unsupported sample rate {rate} Hz")
    if width == 2:
        samples = array("h")
        samples.frombytes(frames[: len(frames) - len(frames) % 2])
    elif width == 1:  # unsigned 8-bit
        samples = array("h", ((b - 128) << 8 for b in frames))
    else:
        raise BadAudioError(f"{8 * width}-bit samples; only 8- and 16-bit PCM is supported")
    return Pcm(rate, tuple(samples[c::n_ch] for c in range(n_ch)))


def resample(samples: array[int], src: int, dst: int = MODEL_RATE) -> array[int]:
    """Linear-interpolation resampling of int16 samples (exact interleave for 2x)."""
    if src == dst or not samples:
        return array("h", samples)
    if dst == 2 * src:
        mids = [(a + b) >> 1 for a, b in itertools.pairwise(samples)]
        mids.append(samples[-1])
        out = array("h", bytes(4 * len(samples)))
        out[0::2] = samples
        out[1::2] = array("h", mids)
        return out
    n_out = int(len(samples) * dst / src)
    step = src / dst
    last = len(samples) - 1
    res = array("h")
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        frac = pos - j
        a = samples[j]
        b = samples[j + 1] if j < last else a
        res.append(int(a + (b - a) * frac))
    return res


# --- the worker process -------------------------------------------------------------------

_decoder: Any = None  # one per worker process, reused across jobs


def _get_decoder() -> Any:
    global _decoder
    if _decoder is None:
        from pocketsphinx import Decoder

        # batch CMN: each utterance is normalised on its own, so a transcript does not depend
        # on what this worker decoded before (live CMN carries state across jobs)
        _decoder = Decoder(loglevel="FATAL", cmn="batch")
    return _decoder


def _decode_channel(samples: array[int], rate: int, speaker: str | None) -> list[RawSegment]:
    from pocketsphinx import Segmenter

    if rate not in VAD_RATES:
        samples, rate = resample(samples, rate, MODEL_RATE), MODEL_RATE
    decoder = _get_decoder()
    segmenter = Segmenter(sample_rate=rate)
    out: list[RawSegment] = []
    for region in segmenter.segment(io.BytesIO(samples.tobytes())):
        pcm = array("h")
        pcm.frombytes(region.pcm)
        decoder.start_utt()
        decoder.process_raw(resample(pcm, rate, MODEL_RATE).tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = " ".join(hyp.hypstr.split()) if hyp is not None else ""
        if not text:
            continue
        # a posterior of exactly 1 (log 0) means "not computed", not certainty
        conf = round(decoder.get_logmath().exp(hyp.prob), 3) if hyp.prob < 0 else None
        start = max(0.0, float(region.start_time))
        end = max(start, float(region.end_time))
        out.append((round(start, 2), round(end, 2), text, speaker, conf))
    return out


def transcribe_file(path: str, speakers: tuple[str, str]) -> list[RawSegment]:
    """Worker entry point: the segments of one file, in time order."""
    pcm = read_wav(Path(path))
    if len(pcm.channels) == 1:
        segments = _decode_channel(pcm.channels[0], pcm.rate, None)
    else:
        segments = [s for ch, who in zip(pcm.channels, speakers, strict=False)
                    for s in _decode_channel(ch, pcm.rate, who)]  # fmt: skip
    return sorted(segments, key=lambda s: (s[0], s[1]))


# --- the async engine ---------------------------------------------------------------------


class SphinxTranscriber:
    """:class:`recorder.transcribe.Transcriber` backed by PocketSphinx in a worker process.

    ``speakers`` labels the channels of a two-channel recording. One worker by default: the
    machine's cores belong to live calls first; more workers transcribe more calls at once.
    """

    def __init__(self, *, workers: int = 1, speakers: tuple[str, str] = ("caller", "agent")):
        if not available():
            raise RuntimeError("pocketsphinx is not installed (pip install pocketsphinx)")
        self._workers = workers
        self._speakers = speakers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the hub process runs threads and an event loop
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx)
        return self._pool

    async def transcribe(self, audio: Path, *, language: str | None = None) -> Transcript:
        if language is not None and language.lower() not in LANGUAGES:
            raise TranscriptionError(f"language {language!r} is not supported (only en)",
                                     transient=False)  # fmt: skip
        loop = asyncio.get_running_loop()
        try:
            raw = await loop.run_in_executor(
                self._executor(), transcribe_file, str(audio), self._speakers
            )
        except BadAudioError as exc:
            raise TranscriptionError(str(exc), transient=False) from None
        except FileNotFoundError:
            raise TranscriptionError(f"no audio file at {audio}", transient=False) from None
        except BrokenProcessPool:
            self._pool = None  # the next call starts a fresh worker
            raise TranscriptionError("the transcription worker died", transient=True) from None
        except (OSError, RuntimeError, MemoryError) as exc:
            raise TranscriptionError(f"transcription failed: {exc}", transient=True) from None
        segments = tuple(
            Segment(start_s=s, end_s=e, text=t, speaker=who, confidence=c)
            for s, e, t, who, c in raw
            if not (math.isnan(s) or math.isnan(e))
        )
        return Transcript(segments=segments, language="en")

    async def aclose(self) -> None:
        """Stop the worker now, even mid-file: a decode can take minutes and the hub must stop
        promptly; the interrupted job's lease expires and it runs again after the restart."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list(getattr(pool, "_processes", {}).values())  # no public terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        await asyncio.to_thread(lambda: [proc.join(5) for proc in procs])
