"""Content-addressed media storage: recordings, fax pages, attachments.

Theory of operation: an object's key is the SHA-256 of its bytes (64 hex chars) and its file
lives at ``<root>/<k[0:2]>/<k[2:4]>/<k>``, so directories stay small and identical content is
stored once (a second put of the same bytes is a no-op that returns the same key). A put streams
into ``<root>/tmp/`` while hashing and counting, fsyncs, then renames into place and fsyncs the
directory: a crash leaves either the complete object or a temp file (swept by
:meth:`MediaStore.sweep_temp`), never a truncated object under a valid key. The size limit is
enforced while streaming, so an oversized upload is never fully buffered.

The key is the checksum: :meth:`MediaStore.verify` and :meth:`MediaStore.read` re-hash the file
and report silent corruption; a later put of the same bytes repairs a corrupt copy. Ranged reads
(:meth:`MediaStore.iter_range`, for audio seeking) cannot be checked piecewise; scrub with
``verify``. Content types are sniffed from magic bytes when the caller does not know them; the
hub keeps the declared type, names and who may access what (and logs who listened) in its DB.
All file I/O runs in worker threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from recorder.media.ranges import ByteRange
from recorder.media.sniff import sniff_content_type

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
CHUNK = 256 * 1024


class MediaError(Exception):
    """Base of media store failures; ``code`` is stable for the API."""

    code = "media_error"


class MediaTooLargeError(MediaError):
    """The object exceeds the store's size limit; nothing was stored."""

    code = "media_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"media larger than the limit of {limit} bytes")
        self.limit = limit


class MediaNotFoundError(MediaError, KeyError):
    code = "media_not_found"


class InvalidMediaKeyError(MediaError, ValueError):
    """Not a SHA-256 hex key (also what stops path traversal through keys)."""

    code = "media_invalid_key"


class MediaCorruptError(MediaError):
    """The file no longer hashes to its key."""

    code = "media_corrupt"


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a put stored: the key to keep in the DB, the size and the content type."""

    key: str
    size: int
    content_type: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MediaStore:
    """Content-addressed files under ``root`` with atomic, deduplicated writes."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the object ``key`` lives (whether or not it exists)."""
        if not _KEY_RE.match(key):
            raise InvalidMediaKeyError(f"invalid media key {key[:80]!r}")
        return self.root / key[:2] / key[2:4] / key

    # ---- writing ------------------------------------------------------------------------

    async def put(self, data: bytes, content_type: str | None = None) -> MediaInfo:
        """Store ``data``; ``content_type`` ``None`` (or octet-stream) means sniff it."""
        if len(data) > self.max_bytes:
            raise MediaTooLargeError(self.max_bytes)

        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(one(), content_type)

    async def put_stream(self, chunks: AsyncIterable[bytes],
                         content_type: str | None = None) -> MediaInfo:
        """Store the concatenated ``chunks`` without holding them all in memory."""
        tmp = self._tmp / f"{time.time_ns()}-{secrets.token_hex(8)}"
        hasher = hashlib.sha256()
        size = 0
        head = b""
        handle: BinaryIO = await asyncio.to_thread(tmp.open, "xb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise MediaTooLargeError(self.max_bytes)
                if len(head) < 64:
                    head += chunk[: 64 - len(head)]
                hasher.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(self._flush, handle)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
        key = hasher.hexdigest()
        await asyncio.to_thread(self._install, tmp, key, size)
        if not content_type or content_type == "application/octet-stream":
            content_type = sniff_content_type(head)
        return MediaInfo(key, size, content_type)

    @staticmethod
    def _flush(handle: BinaryIO) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()

    def _install(self, tmp: Path, key: str, size: int) -> None:
        final = self.path(key)
        if final.exists() and final.stat().st_size == size and self._hash(final) == key:
            tmp.unlink()
            log.debug("media %s already stored", key)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(final)  # atomic rename; also repairs a corrupt copy
        _fsync_dir(final.parent)
        log.info("media stored key=%s size=%d", key, size)

    def sweep_temp(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left by crashed puts; returns how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for item in self._tmp.iterdir():
            if item.stat().st_mtime < cutoff:
                item.unlink(missing_ok=True)
                removed += 1
        return removed

    # ---- reading ------------------------------------------------------------------------

    @staticmethod
    def _hash(path: Path) -> str:
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                hasher.update(block)
        return hasher.hexdigest()

    def _existing(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise MediaNotFoundError(key)
        return path

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def size(self, key: str) -> int:
        return await asyncio.to_thread(lambda: self._existing(key).stat().st_size)

    async def content_type(self, key: str) -> str:
        """The sniffed content type of a stored object (the DB's declared type wins)."""

        def head() -> bytes:
            with self._existing(key).open("rb") as handle:
                return handle.read(64)

        return sniff_content_type(await asyncio.to_thread(head))

    async def verify(self, key: str) -> bool:
        """Whether the stored file still hashes to ``key`` (raises if it is missing)."""
        path = self.path(key)
        ok = await asyncio.to_thread(lambda: self._hash(self._existing(key)) == key)
        if not ok:
            log.error("media corrupt: %s", path)
        return ok

    async def read(self, key: str) -> bytes:
        """The whole object, checksum verified (for small objects: fax pages, attachments)."""

        def load() -> bytes:
            data = self._existing(key).read_bytes()
            if hashlib.sha256(data).hexdigest() != key:
                log.error("media corrupt: %s", key)
                raise MediaCorruptError(key)
            return data

        return await asyncio.to_thread(load)

    async def iter_range(self, key: str, byte_range: ByteRange | None = None,
                         chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream the object, or just ``byte_range`` of it, in chunks (for 200/206 bodies)."""
        path = await asyncio.to_thread(self._existing, key)
        handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        try:
            start = byte_range.start if byte_range else 0
            remaining = byte_range.length if byte_range else None
            await asyncio.to_thread(handle.seek, start)
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                block = await asyncio.to_thread(handle.read, want)
                if not block:
                    break
                if remaining is not None:
                    remaining -= len(block)
                yield block
        finally:
            handle.close()

    async def delete(self, key: str) -> bool:
        """Remove the object (data-protection purge); ``False`` if it was not there. The
        caller must know no other record references the same content."""

        def remove() -> bool:
            path = self.path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            _fsync_dir(path.parent)
            log.info("media deleted key=%s", key)
            return True

        return await asyncio.to_thread(remove)
