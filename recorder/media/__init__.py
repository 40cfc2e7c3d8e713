"""Media storage: content-addressed files and HTTP range support for serving them."""

from recorder.media.ranges import ByteRange, RangeNotSatisfiableError, parse_range
from recorder.media.sniff import sniff_content_type
from recorder.media.store import (
    InvalidMediaKeyError,
    MediaCorruptError,
    MediaError,
    MediaInfo,
    MediaNotFoundError,
    MediaStore,
    MediaTooLargeError,
)

__all__ = [
    "ByteRange",
    "InvalidMediaKeyError",
    "MediaCorruptError",
    "MediaError",
    "MediaInfo",
    "MediaNotFoundError",
    "MediaStore",
    "MediaTooLargeError",
    "RangeNotSatisfiableError",
    "parse_range",
    "sniff_content_type",
]
