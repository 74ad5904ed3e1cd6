"""The media checks: exactly one camera's footage frames for exactly the reported window, raw or in an MP4."""

from __future__ import annotations

from devstack.footage import FILLER_MAGIC, FOOTAGE_MAGIC, FootageReader
from devstack.footage_mp4 import Mp4FootageReader, is_mp4


def is_footage(head: bytes) -> bool:
    return head.startswith((FOOTAGE_MAGIC, FILLER_MAGIC))


def is_mp4_head(head: bytes) -> bool:
    return is_mp4(head[:64])


class FootageCheck:
    def __init__(self, camera_id: str, start_ms: int, end_ms: int) -> None:
        self._expected = (camera_id, start_ms, end_ms)
        self._reader = FootageReader()

    def feed(self, data: bytes | memoryview) -> None:
        self._reader.feed(data)

    def problem(self) -> str:
        return self._reader.result().describes(*self._expected)


class Mp4Check:
    """A real MP4 whose samples carry the frames; its reader demuxes on a helper thread until `problem()`."""

    def __init__(self, camera_id: str, start_ms: int, end_ms: int) -> None:
        self._expected = (camera_id, start_ms, end_ms)
        self._reader = Mp4FootageReader()

    def feed(self, data: bytes | memoryview) -> None:
        self._reader.feed(data)

    def problem(self) -> str:
        return self._reader.result().describes(*self._expected)
