"""What a delivered file must hold: checked on the decrypted plaintext as it streams, never buffered whole.

- CompleteMedia: exactly the footage of the reported camera and window (to the millisecond), no
  placeholder frames. The media format is told from the file's first bytes (`MEDIA_FORMATS`): raw
  `devstack.footage` frames (EEN, Rhombus) or a real MP4 whose samples carry them (Verkada); another
  format plugs in with a module and one line there. Anything else is rejected.
- CompleteThumbnail: a JPEG whose comment names the reported camera and capture time.
- CompleteDiscovery: a JSON document with as many devices as the reported DeviceCount.

Each check is fed the plaintext in pieces and then says what is wrong ("" when nothing is).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from devstack.footage import camera_tag, read_jpeg_comment

from .media_footage import FootageCheck, Mp4Check, is_footage, is_mp4_head

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SNIFF_BYTES = 64
JPEG_HEAD_BYTES = 64 * 1024  # a simulated snapshot's comment comes right after its APP0 segment
MAX_DISCOVERY_BYTES = 64 * 1024 * 1024


class ContentCheck(Protocol):
    subject: str
    """What the file should be, for messages: "the footage", "the thumbnail", "the device list"."""

    def feed(self, data: bytes | memoryview) -> None: ...

    def problem(self) -> str:
        """Empty when the content is what was reported; otherwise why not. Always called, once, at the end
        (a check may hold a helper thread until then)."""
        ...


MediaCheckFactory = Callable[[str, int, int], "MediaFormatCheck"]
"""(camera id, start ms, end ms) → a check of a file that must be exactly that footage."""

MEDIA_FORMATS: tuple[tuple[Callable[[bytes], bool], MediaCheckFactory], ...] = (
    (is_footage, FootageCheck),  # devstack.footage frames, as the EEN and Rhombus simulators serve them
    (is_mp4_head, Mp4Check),  # an MP4 whose H.264 samples carry those frames (the Verkada simulator's)
)
"""(does this file start like this format?, its check); the first match decides."""


def expected_content(kind: str, fields: dict[str, Any]) -> ContentCheck:
    """The check for a Complete* call of `kind` ("media", "thumbnail", "discovery") and its fields."""
    if kind == "media":
        start, end = _ms(fields["StartTimeUtc"]), _ms(fields["EndTimeUtc"])
        return MediaCheck(fields["CameraId"], start, end)
    if kind == "thumbnail":
        return ThumbnailCheck(fields["CameraId"], _ms(fields["CapturedUtc"]))
    return DiscoveryCheck(fields["DeviceCount"])


def _ms(text: str) -> int | str:
    """Milliseconds since the epoch, or a reason when the time is finer than a millisecond."""
    micros = (datetime.fromisoformat(text).astimezone(UTC) - EPOCH) // timedelta(microseconds=1)
    if micros % 1000:
        return f"{text} is finer than a millisecond, so it cannot be a frame boundary"
    return micros // 1000


class MediaFormatCheck(Protocol):
    def feed(self, data: bytes | memoryview) -> None: ...

    def problem(self) -> str: ...


class MediaCheck:
    """Sniffs the format from the first bytes, then streams everything into that format's check."""

    subject = "the footage"

    def __init__(self, camera_id: str, start_ms: int | str, end_ms: int | str) -> None:
        self._camera_id = camera_id
        self._window = (start_ms, end_ms)
        self._head = bytearray()
        self._inner: MediaFormatCheck | None = None
        self._settled = any(isinstance(t, str) for t in self._window)  # reported times already wrong

    def feed(self, data: bytes | memoryview) -> None:
        if self._inner is not None:
            self._inner.feed(data)
        elif not self._settled:
            self._head += data
            if len(self._head) >= SNIFF_BYTES:
                self._choose()

    def _choose(self) -> None:
        self._settled = True
        head = bytes(self._head)
        start, end = self._window
        assert isinstance(start, int) and isinstance(end, int)
        for matches, factory in MEDIA_FORMATS:
            if matches(head):
                self._inner = factory(self._camera_id, start, end)
                self._inner.feed(head)
                return

    def problem(self) -> str:
        for reported in self._window:
            if isinstance(reported, str):
                return reported
        if not self._settled:
            self._choose()  # a file shorter than SNIFF_BYTES
        if self._inner is None:
            return "the file is not in a media format the simulator knows (no footage frames at its start)"
        return self._inner.problem()


class ThumbnailCheck:
    """A JPEG whose comment names the reported camera and capture time (the first 64 KiB are kept)."""

    subject = "the thumbnail"

    def __init__(self, camera_id: str, captured_ms: int | str) -> None:
        self._camera_id = camera_id
        self._captured = captured_ms
        self._head = bytearray()
        self._tail = b""

    def feed(self, data: bytes | memoryview) -> None:
        if len(self._head) < JPEG_HEAD_BYTES:
            self._head += data[: JPEG_HEAD_BYTES - len(self._head)]
        self._tail = (self._tail + bytes(data[-2:]))[-2:]

    def problem(self) -> str:
        if isinstance(self._captured, str):
            return self._captured
        if not self._head.startswith(b"\xff\xd8\xff") or self._tail != b"\xff\xd9":
            return "the thumbnail is not a JPEG (no SOI/EOI markers)"
        found = read_jpeg_comment(bytes(self._head))
        if found is None:
            return "the thumbnail carries no simulator comment naming its camera and capture time"
        tag, captured = found
        if tag != camera_tag(self._camera_id):
            return f"the thumbnail is not camera {self._camera_id}'s"
        if captured != self._captured:
            return f"the thumbnail was captured at {captured} ms, but reported as {self._captured} ms"
        return ""


class DiscoveryCheck:
    """The discovery document: a JSON object whose Devices list has DeviceCount entries (at most 64 MiB kept)."""

    subject = "the device list"

    def __init__(self, device_count: int) -> None:
        self._count = device_count
        self._data = bytearray()
        self._too_large = False

    def feed(self, data: bytes | memoryview) -> None:
        if len(self._data) + len(data) > MAX_DISCOVERY_BYTES:
            self._too_large = True
            return
        self._data += data

    def problem(self) -> str:
        if self._too_large:
            return f"the discovery document is over {MAX_DISCOVERY_BYTES} bytes; the simulator does not check it"
        try:
            document = json.loads(self._data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return "the discovery document is not UTF-8 JSON"
        devices = document.get("Devices") if isinstance(document, dict) else None
        if not isinstance(devices, list):
            return "the discovery document has no Devices list"
        if len(devices) != self._count:
            return f"the discovery document lists {len(devices)} devices, but DeviceCount is {self._count}"
        return ""
