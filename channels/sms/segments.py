"""GSM-7 vs UCS-2 detection and segment counting, shown to the agent before a reply is sent.

Why it matters: a carrier bills per segment, and one emoji turns a 160-character GSM-7 message
into a 70-unit UCS-2 one. The count here mirrors what a gateway does when it splits a long text:

- GSM 03.38 basic table characters cost one septet; extension-table characters (``€ [ ] { } ~ ^
  \\ |`` and form feed) cost two (escape + char) and are never split across segments.
- A single GSM-7 segment holds 160 septets; concatenated ones lose 7 to the UDH and hold 153.
- Anything outside both tables forces UCS-2 for the whole message: 70 UTF-16 code units in one
  segment, 67 when concatenated; a surrogate pair (emoji) is two units and is never split.

Everything is pure and deterministic so it can be table-tested and reused by the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 default alphabet, in code-point order 0x00..0x7F (0x1B is the escape to extension).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_GSM_BASIC) == 128
GSM_BASIC: frozenset[str] = frozenset(_GSM_BASIC) - {"\x1b"}
GSM_EXTENSION: frozenset[str] = frozenset("\x0c^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class SmsEncoding(StrEnum):
    """The data coding a message needs."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What the inbox shows under the reply box."""

    encoding: SmsEncoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # capacity of each segment at this length (160/153 or 70/67)
    remaining: int  # units left in the last segment before another one starts


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def detect_encoding(text: str) -> SmsEncoding:
    """GSM-7 when possible, otherwise UCS-2 (a single non-GSM character switches all)."""
    return SmsEncoding.GSM7 if is_gsm7(text) else SmsEncoding.UCS2


def _unit_costs(text: str, encoding: SmsEncoding) -> list[int]:
    """Per-character cost in units; each entry is indivisible when packing segments."""
    if encoding is SmsEncoding.GSM7:
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(costs: list[int], capacity: int) -> tuple[int, int]:
    """Greedy packing as a gateway splits: return (segments, units used in the last one)."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments += 1
            used = 0
        used += cost
    return segments, used


def count_segments(text: str) -> SegmentInfo:
    """Encoding, length in units and number of segments ``text`` will be sent as."""
    encoding = detect_encoding(text)
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    single, multi = (
        (GSM_SINGLE, GSM_MULTI) if encoding is SmsEncoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    )
    if units <= single:
        return SegmentInfo(encoding, units, 1, single, single - units)
    segments, last = _pack(costs, multi)
    return SegmentInfo(encoding, units, segments, multi, multi - last)
