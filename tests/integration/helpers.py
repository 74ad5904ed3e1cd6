"""Small helpers for integration tests."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import datetime
from urllib.parse import unquote, urlsplit

from devstack.footage import footage


def blob_name_from_sas(uri: str, container: str) -> str:
    path = unquote(urlsplit(uri).path)
    return path.split(f"/{container}/", 1)[1]


def random_file(size: int) -> tuple[io.BytesIO, bytes, str]:
    data = os.urandom(size)
    return io.BytesIO(data), data, hashlib.sha256(data).hexdigest()


def footage_file(camera: dict, bitrate_kbps: int = 8) -> tuple[io.BytesIO, bytes, str]:
    """The exact simulated footage of a simulator job's camera window (its `Parameters.Cameras[i]` dict)."""
    start, end = (
        int(datetime.fromisoformat(camera[name]).timestamp() * 1000) for name in ("StartTimeUtc", "EndTimeUtc")
    )
    data = b"".join(footage(camera["CameraId"], start, end, bitrate_kbps))
    return io.BytesIO(data), data, hashlib.sha256(data).hexdigest()


def complete_media_for(client, job_id: str, lock_token: str, file_id: str, camera: dict, size: int, sha256: str):
    """CompleteMedia for one camera window of a simulator job (its `Parameters.Cameras[i]` dict)."""
    client.complete_media(
        job_id,
        lock_token,
        file_id,
        camera_id=camera["CameraId"],
        start=datetime.fromisoformat(camera["StartTimeUtc"]),
        end=datetime.fromisoformat(camera["EndTimeUtc"]),
        size=size,
        sha256=sha256,
    )
