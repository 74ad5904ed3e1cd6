"""A real (baseline, greyscale) JPEG, encoded here so that no imaging library is needed.

The picture is a uniform mid-grey: after the level shift every 8×8 block is all zeros, so each block
codes as "DC difference 0, end of block" with two tiny Huffman tables. Any JPEG decoder reads it.
"""

from __future__ import annotations

import struct
from functools import cache


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def _huffman_table(table_class: int, symbols: bytes) -> bytes:
    """Both symbols get a 2-bit code (00 and 01); only the first is ever used."""
    counts = bytes([0, len(symbols)] + [0] * 14)
    return bytes([table_class << 4]) + counts + symbols


@cache
def grey_jpeg(width: int = 320, height: int = 240) -> bytes:
    blocks = -(-width // 8) * -(-height // 8)
    bits = 4 * blocks  # per block: DC category 0 (code 00) + AC end-of-block (code 00)
    scan = bytes(bits // 8) + (b"\x0f" if bits % 8 else b"")  # pad the last byte with 1-bits
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + b"\x01" * 64),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
            _segment(0xC4, _huffman_table(0, b"\x00\x01") + _huffman_table(1, b"\x00\xf0")),
            _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        ]
    )
