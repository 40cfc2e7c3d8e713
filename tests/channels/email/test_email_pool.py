"""Backlog parsing in worker processes (channels/email/parse_pool.py) gives what parsing in the
event loop's process gives, ParseErrors included."""

from __future__ import annotations

from pathlib import Path

from channels.base import ChannelKind, Inbound, ParseError
from channels.email.parse import ParseOptions, parse_email
from channels.email.parse_pool import MIN_POOL_BATCH, parse_many, start_pool

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"


async def test_pool_parses_like_the_event_loop_process() -> None:
    raws = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    assert len(raws) >= MIN_POOL_BATCH
    opts = ParseOptions(our_addresses=frozenset({"support@contacthub.test"}))
    await start_pool(2)
    pooled = await parse_many(raws, "mb", ChannelKind.EMAIL, opts, workers=2)
    assert len(pooled) == len(raws)
    errors = 0
    for raw, got in zip(raws, pooled, strict=True):
        try:
            expected: Inbound | ParseError = parse_email(raw, channel_id="mb", options=opts)
        except ParseError as exc:
            expected = exc
        if isinstance(expected, ParseError):
            errors += 1
            assert isinstance(got, ParseError) and got.field == expected.field
            continue
        assert isinstance(got, Inbound)
        # received_at falls back to "now" for mail without a Date header
        same = {f: getattr(got, f) == getattr(expected, f) for f in Inbound.__dataclass_fields__
                if f != "received_at"}
        assert all(same.values()), [f for f, ok in same.items() if not ok]
        assert dict(got.metadata) == dict(expected.metadata)
    assert errors >= 2  # the corpus's unparseable mails came back as ParseErrors
