"""Joining the parts of a concatenated (long) inbound SMS.

A phone splits a long text into parts that share a reference number in their UDH; they may
arrive out of order, twice (gateway retries) or never (a lost part). Parts wait in a
:class:`~channels.sms.stores.PartsStore`; when all arrived they become one :class:`Inbound`.
When the timeout passes first, the parts present are ingested anyway, marked partial, with
the missing sequence numbers: an incomplete message beats a lost one.

The joined message's ``external_id`` is derived from the group and its parts' own ids, so the
same parts always give the same id (restart-safe dedupe in the hub).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from channels.base import Address, AddressKind, ChannelKind, Inbound
from channels.sms.stores import StoredPart


def concat_of(inbound: Inbound) -> dict[str, int] | None:
    """The concatenation header a parser put in metadata, if any (single-part ones ignored)."""
    info = inbound.metadata.get("concat")
    if not isinstance(info, dict) or int(info.get("total", 1)) <= 1:
        return None
    return {key: int(info[key]) for key in ("ref", "total", "seq", "ref_bits")}


def group_key(inbound: Inbound, info: dict[str, int]) -> str:
    """Parts belong together when sender, recipient, reference and part count agree."""
    return "|".join(
        (
            inbound.channel_id,
            inbound.sender.value,
            inbound.recipient or "",
            f"{info['ref_bits']}:{info['ref']}",
            str(info["total"]),
        )
    )


def to_part(inbound: Inbound, info: dict[str, int], now: float) -> StoredPart:
    """A storable part; metadata keeps only plain values the joined message reuses."""
    keep = {k: v for k, v in inbound.metadata.items() if k in ("provider", "smsc", "coding")}
    return StoredPart(
        group=group_key(inbound, info),
        seq=info["seq"],
        total=info["total"],
        part_id=inbound.external_id,
        sender=inbound.sender.value,
        recipient=inbound.recipient,
        text=inbound.text,
        received_at=inbound.received_at,
        first_seen=now,
        metadata=keep,
    )


def _join_text(texts: Sequence[str]) -> str:
    """Concatenate; re-pair UTF-16 surrogates split across parts (an emoji at a boundary)."""
    joined = "".join(texts)
    return joined.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


def join_parts(parts: Sequence[StoredPart], *, channel_id: str) -> Inbound:
    """Build the message the customer wrote from its parts (complete or not)."""
    if not parts:
        raise ValueError("join_parts needs at least one part")
    ordered = sorted(parts, key=lambda p: p.seq)
    first = ordered[0]
    present = [p.seq for p in ordered]
    missing = [seq for seq in range(1, first.total + 1) if seq not in present]
    digest = hashlib.sha256(first.group.encode())
    for part in ordered:
        digest.update(b"\x00" + part.part_id.encode())
    metadata: dict[str, Any] = dict(first.metadata)
    metadata["concat"] = {
        "total": first.total,
        "received": len(ordered),
        "partial": bool(missing),
        "missing": missing,
        "part_ids": [p.part_id for p in ordered],
    }
    return Inbound(
        channel=ChannelKind.SMS,
        channel_id=channel_id,
        external_id=f"sms:concat:{digest.hexdigest()[:32]}",
        sender=Address(AddressKind.PHONE, first.sender),
        recipient=first.recipient,
        text=_join_text([p.text for p in ordered]),
        received_at=min(p.received_at for p in ordered),
        metadata=metadata,
    )
