"""The content-addressed media store on a real directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recorder.media import (
    InvalidMediaKeyError,
    MediaCorruptError,
    MediaNotFoundError,
    MediaStore,
    MediaTooLargeError,
    parse_range,
)

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] != "tmp")


async def test_put_is_content_addressed_fanned_out_and_deduplicated(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    info = await store.put(WAV)
    key = hashlib.sha256(WAV).hexdigest()
    assert (info.key, info.size, info.content_type) == (key, len(WAV), "audio/wav")
    assert store.path(key) == tmp_path / key[:2] / key[2:4] / key
    assert store.path(key).read_bytes() == WAV
    again = await store.put_stream(chunks(WAV, 1000), "audio/x-wav")
    assert again.key == key and again.content_type == "audio/x-wav"
    assert stored_files(tmp_path) == [store.path(key)]
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_stream_put_matches_bytes_put(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = os.urandom(700_001)
    streamed = await store.put_stream(chunks(data, 65_536))
    assert streamed.key == hashlib.sha256(data).hexdigest()
    assert streamed.content_type == "application/octet-stream"
    assert await store.read(streamed.key) == data


async def test_size_limit_rejects_without_leaving_files(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, max_bytes=1000)
    with pytest.raises(MediaTooLargeError) as err:
        await store.put(b"x" * 1001)
    assert err.value.limit == 1000 and err.value.code == "media_too_large"
    with pytest.raises(MediaTooLargeError):
        await store.put_stream(chunks(b"y" * 5000, 300))
    assert stored_files(tmp_path) == [] and list((tmp_path / "tmp").iterdir()) == []
    assert (await store.put(b"z" * 1000)).size == 1000


async def test_corruption_is_detected_and_repaired_by_a_new_put(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    info = await store.put(b"%PDF-1.4 fax page")
    assert info.content_type == "application/pdf"
    assert await store.verify(info.key)
    store.path(info.key).write_bytes(b"%PDF-1.4 fax pagE")
    assert not await store.verify(info.key)
    with pytest.raises(MediaCorruptError):
        await store.read(info.key)
    await store.put(b"%PDF-1.4 fax page")
    assert await store.verify(info.key)
    assert await store.read(info.key) == b"%PDF-1.4 fax page"


async def test_delete_and_missing_objects(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    info = await store.put(b"bye")
    assert await store.exists(info.key)
    assert await store.delete(info.key) is True
    assert await store.delete(info.key) is False
    assert not await store.exists(info.key)
    with pytest.raises(MediaNotFoundError):
        await store.read(info.key)
    with pytest.raises(MediaNotFoundError):
        await store.verify(info.key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "ab" * 31, "", "0" * 63 + "/"])
async def test_keys_that_are_not_sha256_hex_are_refused(tmp_path: Path, key: str) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(InvalidMediaKeyError):
        await store.read(key)
    with pytest.raises(InvalidMediaKeyError):
        await store.delete(key)


async def test_iter_range_serves_exactly_the_requested_bytes(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    info = await store.put(WAV)
    size = await store.size(info.key)
    assert await store.content_type(info.key) == "audio/wav"
    for header, expected in [("bytes=0-99", WAV[:100]), ("bytes=5000-", WAV[5000:]),
                             ("bytes=-10", WAV[-10:]), ("bytes=100-99999999", WAV[100:])]:
        byte_range = parse_range(header, size)
        assert byte_range is not None
        body = b"".join([c async for c in store.iter_range(info.key, byte_range, 777)])
        assert body == expected and len(body) == byte_range.length
    whole = b"".join([c async for c in store.iter_range(info.key, None, 4096)])
    assert whole == WAV


async def test_sweep_removes_only_stale_temp_files(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    stale = tmp_path / "tmp" / "crashed-put"
    stale.write_bytes(b"partial")
    os.utime(stale, (1, 1))
    fresh = tmp_path / "tmp" / "in-progress"
    fresh.write_bytes(b"partial")
    assert store.sweep_temp(older_than_s=60) == 1
    assert not stale.exists() and fresh.exists()
