"""hub.ids: the ID format, its time order, and that the batched random parts are never shared."""

from __future__ import annotations

import os
import threading

import pytest

from hub import ids
from hub.ids import PREFIXES, new_id


def _decode(value: str) -> tuple[str, int]:
    prefix, _, digits = value.partition("_")
    number = 0
    for ch in digits:
        number = number * 32 + ids._ALPHABET.index(ch)
    return prefix, number


def test_format_is_prefix_and_26_crockford_digits() -> None:
    for entity, prefix in PREFIXES.items():
        value = new_id(entity)
        head, _, digits = value.partition("_")
        assert head == prefix
        assert len(digits) == 26
        assert set(digits) <= set(ids._ALPHABET)
        assert digits[0] in "01234567"  # 130 digits' bits hold 128: the top two are zero


def test_digits_encode_the_millisecond_and_the_random_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ms, rand = 0xABCDEF012345, 0x1234_5678_9ABC_DEF0_1357
    monkeypatch.setattr(ids.time, "time", lambda: ms / 1000 + 0.0004)
    monkeypatch.setattr(ids, "_random80", lambda: rand)
    prefix, number = _decode(new_id("interaction"))
    assert prefix == "ix"
    assert number == (ms << 80) | rand


def test_ids_sort_by_creation_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([1_700_000_000.000 + i * 0.001 for i in range(200)])
    monkeypatch.setattr(ids.time, "time", lambda: next(clock))
    made = [new_id("conversation") for _ in range(200)]
    assert made == sorted(made)


def test_random_parts_are_80_bits_and_distinct() -> None:
    parts = [ids._random80() for _ in range(3 * ids._BATCH + 7)]  # crosses refills
    assert all(0 <= p < 1 << 80 for p in parts)
    assert len(set(parts)) == len(parts)


def test_threads_never_share_a_random_part() -> None:
    got: list[list[int]] = []

    def draw() -> None:
        got.append([ids._random80() for _ in range(2_000)])

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [p for chunk in got for p in chunk]
    assert len(flat) == 8_000
    assert len(set(flat)) == len(flat)


def test_a_forked_child_draws_fresh_random_parts() -> None:
    ids._random80()  # the parent holds a batch
    assert ids._random_parts
    parents_next = ids._random_parts[-1]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next part, leave at once
        try:
            os.write(write, ids._random80().to_bytes(10, "big"))
        finally:
            os._exit(0)
    os.close(write)
    childs = int.from_bytes(os.read(read, 10), "big")
    os.close(read)
    os.waitpid(pid, 0)
    assert childs != parents_next
    assert ids._random_parts[-1] == parents_next  # the parent's batch is untouched
