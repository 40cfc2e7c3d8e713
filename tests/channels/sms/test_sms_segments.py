"""GSM-7 vs UCS-2 detection and segment counts (the number the inbox shows before sending)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.sms.segments import SmsEncoding, count_segments, detect_encoding, is_gsm7

GSM, UCS = SmsEncoding.GSM7, SmsEncoding.UCS2

TABLE = [
    # text, encoding, units, segments
    ("", GSM, 0, 1),
    ("Hello", GSM, 5, 1),
    ("a" * 160, GSM, 160, 1),
    ("a" * 161, GSM, 161, 2),
    ("a" * 306, GSM, 306, 2),
    ("a" * 307, GSM, 307, 3),
    ("€" * 80, GSM, 160, 1),  # extension chars cost two septets
    ("€" * 81, GSM, 162, 2),
    ("a" + "€" * 76 + "b" * 153, GSM, 306, 2),
    ("a" * 152 + "€" + "b" * 152, GSM, 306, 3),  # a € is never split across segments
    ("[]{}~^\\|", GSM, 16, 1),
    ("Ça coûte 5£ à Zürich", UCS, 20, 1),  # û is not in GSM 03.38
    ("Ça a coûté", UCS, 10, 1),
    ("Ça a été à Zürich ¿ñ?", GSM, 21, 1),  # all in the basic table
    ("ж" * 70, UCS, 70, 1),
    ("ж" * 71, UCS, 71, 2),
    ("ж" * 134, UCS, 134, 2),
    ("ж" * 135, UCS, 135, 3),
    ("😀" * 35, UCS, 70, 1),  # surrogate pairs: two units each
    ("😀" * 36, UCS, 72, 2),
    ("a" * 69 + "😀", UCS, 71, 2),
    ("a" * 66 + "😀" + "a" * 66, UCS, 134, 3),  # nor is a surrogate pair
    ("a" * 159 + "😀", UCS, 161, 3),  # one emoji turns 160 chars into UCS-2
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), TABLE)
def test_segment_table(text: str, encoding: SmsEncoding, units: int, segments: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_remaining_and_capacity() -> None:
    single = count_segments("a" * 150)
    assert (single.per_segment, single.remaining) == (160, 10)
    multi = count_segments("a" * 200)
    assert (multi.per_segment, multi.remaining) == (153, 153 * 2 - 200)


def test_detection() -> None:
    assert is_gsm7("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ") is True
    assert detect_encoding("\x1b") is UCS  # the escape itself is not a character
    assert detect_encoding("ok`") is UCS  # backtick is not in GSM 03.38


@given(st.text(max_size=400))
def test_segments_hold_every_unit(text: str) -> None:
    info = count_segments(text)
    assert info.segments >= 1
    assert info.units <= info.segments * info.per_segment
    assert 0 <= info.remaining <= info.per_segment
