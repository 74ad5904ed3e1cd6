"""Per-camera media settings on the control API: a camera's own bitrate and export duration.

`PUT /_sim/cameras/<id>/media` with `{"BitrateKbps": 1300, "ExportDurationSeconds": 60}` (either may be
null: back to the configured `BitrateKbps` / `ExportDurationSeconds`) changes what that camera's footage
weighs and how long an export or clip of it takes, without touching the other cameras: a drill can run a
2 GiB job, a slow export and small jobs side by side on one simulator.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from devstack.registry_sim.bodies import Body
from devstack.registry_sim.problems import ProblemError

from .engine import VmsEngine

MAX_BITRATE_KBPS = 100_000
MAX_EXPORT_SECONDS = 24 * 3600


def _number(data: Body, name: str, *, integer: bool, maximum: float) -> Any:
    value = data.raw(name)
    if value is None:
        return None
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value <= maximum:
        kind = "an integer" if integer else "a number"
        raise ProblemError(400, f"{name} must be {kind} from 0 to {maximum:g}, or null")
    return value


def add_camera_media_routes(bp: Blueprint, engine: VmsEngine) -> None:
    @bp.put("/cameras/<path:camera_id>/media")
    def set_camera_media(camera_id: str) -> Response:
        data = Body.of(request) if request.get_data() else Body({})
        bitrate = _number(data, "BitrateKbps", integer=True, maximum=MAX_BITRATE_KBPS)
        seconds = _number(data, "ExportDurationSeconds", integer=False, maximum=MAX_EXPORT_SECONDS)
        camera = engine.cameras.update(camera_id, bitrate_kbps=bitrate or None, export_seconds=seconds)
        if camera is None:
            raise ProblemError(404, f"no camera {camera_id}")
        return jsonify(
            {"CameraId": camera.id, "BitrateKbps": camera.bitrate_kbps, "ExportDurationSeconds": camera.export_seconds}
        )
