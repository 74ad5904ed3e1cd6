"""Cheap, repeatable plaintext sources so that benchmarks measure the pipeline, not data generation."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

MiB = 1024 * 1024
CHUNK = 4 * MiB
_PATTERN = os.urandom(CHUNK)


def chunks(total: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """`total` bytes as chunks of one pre-generated random buffer (the same object, never copied)."""
    block = _PATTERN if chunk == CHUNK else _PATTERN[:chunk]
    sent = 0
    while sent + chunk <= total:
        yield block
        sent += chunk
    if sent < total:
        yield block[: total - sent]


class ChunkReader(io.RawIOBase):
    """The same bytes as a non-seekable file object, for APIs that want `read()`."""

    def __init__(self, total: int) -> None:
        self._chunks = chunks(total)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = next(self._chunks, b"")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
