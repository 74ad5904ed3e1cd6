"""Realistic job Parameters for jobs created through the control API without explicit ones."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from .clock import format_utc

DEFAULT_CAMERA_IDS = tuple(f"camera-{n:02d}" for n in range(1, 9))
MAX_WINDOW = timedelta(hours=2)


def generate_parameters(
    job_type: str, now: datetime, camera_ids: list[str] | None = None, rng: random.Random | None = None
) -> dict[str, Any]:
    rng = rng or random.Random()
    cameras = list(camera_ids or DEFAULT_CAMERA_IDS)
    if job_type == "mediarequest":
        chosen = rng.sample(cameras, k=min(len(cameras), rng.randint(1, 3)))
        return {
            "RequestId": str(uuid.uuid4()),
            "Cameras": [_camera_window(camera, now, rng) for camera in chosen],
        }
    if job_type == "thumbnail":
        return {"CameraIds": rng.sample(cameras, k=min(len(cameras), rng.randint(1, 3)))}
    return {}


def _camera_window(camera_id: str, now: datetime, rng: random.Random) -> dict[str, str]:
    """A window of 1 min to 2 h that ended 5 min to 24 h ago, on whole seconds."""
    end = now.replace(microsecond=0) - timedelta(minutes=rng.randint(5, 24 * 60))
    start = end - timedelta(minutes=rng.randint(1, int(MAX_WINDOW.total_seconds() // 60)))
    return {
        "CameraId": camera_id,
        "StartTimeUtc": format_utc(start, milliseconds=False),
        "EndTimeUtc": format_utc(end, milliseconds=False),
    }
