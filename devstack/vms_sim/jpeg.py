"""Real (baseline, greyscale) JPEG snapshots, encoded here so that no imaging library is needed.

The picture is a uniform mid-grey: after the level shift every 8×8 block is all zeros, so each block
codes as "DC difference 0, end of block" with two tiny Huffman tables. Any JPEG decoder reads it.
Each snapshot carries a COM segment naming its camera and capture time (`devstack.footage`), so two
cameras' or two moments' snapshots never have the same bytes; optional COM padding makes it as large as
a real camera's image.
"""

from __future__ import annotations

import struct
from functools import cache

from devstack.footage import jpeg_comment

MAX_SEGMENT_PAYLOAD = 0xFFFF - 2


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def _huffman_table(table_class: int, symbols: bytes) -> bytes:
    """Both symbols get a 2-bit code (00 and 01); only the first is ever used."""
    counts = bytes([0, len(symbols)] + [0] * 14)
    return bytes([table_class << 4]) + counts + symbols


@cache
def _picture(width: int = 320, height: int = 240) -> tuple[bytes, bytes]:
    """(SOI + APP0, everything after them) of the grey picture."""
    blocks = -(-width // 8) * -(-height // 8)
    bits = 4 * blocks  # per block: DC category 0 (code 00) + AC end-of-block (code 00)
    scan = bytes(bits // 8) + (b"\x0f" if bits % 8 else b"")  # pad the last byte with 1-bits
    head = b"\xff\xd8" + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    tail = b"".join(
        [
            _segment(0xDB, b"\x00" + b"\x01" * 64),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
            _segment(0xC4, _huffman_table(0, b"\x00\x01") + _huffman_table(1, b"\x00\xf0")),
            _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        ]
    )
    return head, tail


def _padding(extra: int) -> bytes:
    """COM segments of zeros adding `extra` bytes (at least 4: the smallest segment)."""
    if extra <= 0:
        return b""
    extra = max(extra, 4)
    segments = []
    while extra:
        total = min(extra, MAX_SEGMENT_PAYLOAD + 4)
        if 0 < extra - total < 4:  # leave room for one more whole segment
            total -= 4
        segments.append(_segment(0xFE, bytes(total - 4)))
        extra -= total
    return b"".join(segments)


def snapshot_jpeg(camera_id: str, captured_ms: int, size: int = 0) -> bytes:
    """The snapshot of a camera at a time: the grey picture with its COM segment, padded to `size` bytes."""
    head, tail = _picture()
    named = head + _segment(0xFE, jpeg_comment(camera_id, captured_ms))  # the comment first: easy to find
    return named + _padding(size - len(named) - len(tail)) + tail
