"""SMS helpers for the inbox: the segment counter under the reply box.

Carriers bill per segment and one emoji switches a whole message from GSM-7 (160 per segment)
to UCS-2 (70), so the composer shows the encoding and what is left before the next segment
while the agent types. The count is the one the SMS channel uses when it sends
(``channels.sms.count_segments``), so what the agent sees is what the gateway does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from channels.sms import SmsEncoding, count_segments
from hub.api.framework import AGENTS_UP, Api, Context

api = Api()

MAX_TEXT = 10_000  # far beyond any SMS (255 segments); bounds the work per request


class SegmentsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # no whitespace stripping: spaces count

    text: str = Field(default="", max_length=MAX_TEXT)


class SegmentsOut(BaseModel):
    encoding: Literal["gsm7", "ucs2"]
    segments: int = Field(description="segments the text is sent as (1 for an empty text)")
    chars_left: int = Field(
        description="units left in the current segment before another one starts "
        "(a GSM-7 extension character such as € or an emoji takes 2)"
    )
    units: int = Field(description="length in septets (GSM-7) or UTF-16 code units (UCS-2)")
    per_segment: int = Field(description="capacity of each segment at this length")


@api.route(
    "GET", "/api/sms/segments", roles=AGENTS_UP, query=SegmentsQuery, response=SegmentsOut,
    tag="sms",
)  # fmt: skip
async def segments(ctx: Context) -> SegmentsOut:
    """Encoding and segment count of a draft SMS reply, for the composer's counter."""
    query: SegmentsQuery = ctx.query
    info = count_segments(query.text)
    return SegmentsOut(
        encoding="gsm7" if info.encoding is SmsEncoding.GSM7 else "ucs2",
        segments=info.segments,
        chars_left=info.remaining,
        units=info.units,
        per_segment=info.per_segment,
    )
