"""Deterministic sample content for demos and tests: a JPEG frame, an MP4-like stream, a discovery document.

Until the VMS adapters land, the protocol demo uploads these instead of real camera output.
"""

from __future__ import annotations

import base64
import json
import random
import struct
from collections.abc import Iterator
from datetime import UTC, datetime

MiB = 1024 * 1024

# A real 64x36 baseline JPEG (557 bytes), made once with Pillow; starts FF D8 FF and ends FF D9.
SAMPLE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAkAEADASIAAhEBAxEB/8QAGQABAQEBAQEAAAAAAAAAAAAAAAYFBwME/8QALhAAAQQAAQoEBwAAAAAAAAAAAAECAwQFERUWVFWTo7LR0gYhNnQjMTVhc4KR/8QAFgEBAQEAAAAAAAAAAAAAAAAABAAC/8QAHxEAAgICAgMBAAAAAAAAAAAAAAEDEQIEFUESUVIU/9oADAMBAAIRAxEAPwCRAOiYhfuMxGy1luw1rZnoiJIqIiZV+5vY2FAk2rszBA5m0nVHOwXmcb2u2d67qM43tds713UJyWPyJ4/L6IMF5nG9rtneu6knj/qHEvdy86itfaU90qoPPruGrd2Z4AEhgXmJ/VLf5n8ykGb8viiaWV8smHUVe9yucvxfNV/cHua+UySx6F6s+MTbyNMGTpLJsyjxe8aSybMo8XvA8dL7Q398XpmsTuP+ocS93LzqfZpLJsyjxe8yblh9y5PalRqPnkdI5G/JFVcq5P6N09bOG/LsHt7GMtePR4gAaDAAIgACIAAiAAIj/9k="
)


def mp4_like_stream(seed: str, size: int, chunk: int = MiB) -> Iterator[bytes]:
    """`size` bytes starting with a valid ISO-BMFF `ftyp` box, the rest pseudo-random from `seed`."""
    header = struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 0x200) + b"isomiso2"
    rng = random.Random(seed)
    remaining = size
    first = header[:size]
    if first:
        yield first
        remaining -= len(first)
    while remaining > 0:
        n = min(chunk, remaining)
        yield rng.randbytes(n)
        remaining -= n


def discovery_document(camera_ids: list[str], vendor: str = "demo") -> bytes:
    """The discovery JSON of protocol §5; unknown values are null, not guessed."""
    devices = [
        {
            "DeviceId": camera_id,
            "Name": f"Camera {index + 1}",
            "Type": "Camera",
            "Latitude": 45.5 + index / 1000 if index % 3 else None,
            "Longitude": -73.6 - index / 1000 if index % 3 else None,
            "Azimuth": None,
            "TimeZone": "America/Toronto",
            "Online": index % 5 != 4,
            "Model": None,
            "Manufacturer": None,
        }
        for index, camera_id in enumerate(camera_ids)
    ]
    document = {
        "GeneratedUtc": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "Vendor": vendor,
        "Devices": devices,
    }
    return json.dumps(document, indent=2).encode("utf-8")
