"""The Rhombus API as a client sees it: the API host (POST + JSON everywhere) and the media host.

Failures of the API host are mostly HTTP 200 with `error: true`; 429 carries Retry-After and a
text body.
"""

from __future__ import annotations

import base64
import secrets
from email.utils import format_datetime
from typing import Any, Protocol

from flask import Blueprint, Response, g, jsonify, request

from .cameras import Camera
from .engine import VmsEngine
from .errors import VmsError
from .jobs import Job, Phase
from .jpeg import snapshot_jpeg
from .serving import stream_response
from .signing import Verdict
from .timeutil import from_ms


class RhombusSite(Protocol):
    """What these routes need from the simulator that serves them (rhombus.py), so neither imports the other."""

    engine: VmsEngine
    api_key: str
    region: str

    def frame_url(self, camera_id: str, frame_ms: int) -> str: ...


FRAME_MS = 100
FACET = ".v0"
LIST_PAGE_DEFAULT, LIST_PAGE_MAX = 100, 1000  # getClipsWithProgress pageSize (OpenAPI: default 100, 1..1000)
CLIP_VISIBILITY = ("PRIVATE", "ORG_WIDE")
CLIP_STATUS = {
    Phase.PENDING: "INITIATING",
    Phase.RUNNING: "UPLOADING",
    Phase.SUCCEEDED: "COMPLETE",
    Phase.FAILED: "FAILED",
}


def ok(**fields: Any) -> Response:
    return jsonify({"error": False, "errorMsg": None, **fields})


def failure(message: str) -> VmsError:
    """HTTP 200 with error: true (how Rhombus reports most failures)."""
    return VmsError(200, message)


def render_error(error: VmsError) -> Response:
    if error.status == 429:
        seconds = error.headers.get("Retry-After", "1")
        response = Response(error.detail or "Too Many Requests", status=429, mimetype="text/plain")
        response.headers["Retry-After"] = seconds if seconds.isdigit() and int(seconds) >= 1 else "1"
        return response
    response = jsonify({"error": True, "errorMsg": error.detail})
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def require_api_key(sim: RhombusSite) -> None:
    scheme = request.headers.get("x-auth-scheme", "")
    key = request.headers.get("x-auth-apikey", "")
    if scheme != "api-token" or not secrets.compare_digest(key.encode(), sim.api_key.encode()):
        raise VmsError(401, "Unauthorized: x-auth-scheme api-token and a valid x-auth-apikey are required")


def json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise VmsError(400, "the request body must be a JSON object")
    return data


def integer(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise failure(f"{name} is required and must be an integer")
    return value


def optional_string(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise failure(f"{name} must be a string")
    return value


def string_list(data: dict[str, Any], name: str) -> list[str] | None:
    value = data.get(name)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise failure(f"{name} must be a list of strings")
    return value


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"clips:{offset}".encode()).rstrip(b"=").decode()


def page_offset(token: Any) -> int:
    """The offset a page token names; 0 without one; a failure for a token this server never gave."""
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token) + "=" * (-len(str(token)) % 4)).decode()
        kind, _, offset = text.partition(":")
        if kind != "clips" or not offset.isdigit():
            raise ValueError(text)
        return int(offset)
    except (ValueError, UnicodeDecodeError):
        raise failure("pageToken is not valid") from None


def api_blueprint(sim: RhombusSite) -> Blueprint:
    bp = Blueprint("rhombus_api", __name__, url_prefix="/api")
    engine = sim.engine

    @bp.before_request
    def authenticate() -> None:
        require_api_key(sim)

    def camera_or_fail(camera_uuid: Any) -> Camera:
        camera = engine.cameras.get(camera_uuid) if isinstance(camera_uuid, str) else None
        if camera is None:
            raise failure(f"Camera not found: {camera_uuid}")
        return camera

    def clip_or_fail(data: dict[str, Any], name: str) -> Job:
        clip_uuid = data.get(name)
        if not isinstance(clip_uuid, str) or not clip_uuid:
            raise failure(f"{name} is required")
        job = engine.jobs.get(clip_uuid) if isinstance(clip_uuid, str) else None
        if job is None:
            raise failure(f"Clip not found: {clip_uuid}")
        g.job_id = job.id
        return job

    @bp.post("/camera/getMinimalCameraStateList", endpoint="get_camera_states")
    def get_camera_states() -> Response:
        json_body()
        return ok(cameraStates=[camera_state(sim, camera) for camera in engine.cameras.all()])

    @bp.post("/camera/getPresenceWindows", endpoint="get_presence")
    def get_presence() -> Response:
        data = json_body()
        camera = camera_or_fail(data.get("cameraUuid"))
        start, duration = integer(data, "startTimeSec"), integer(data, "durationSec")
        if duration <= 0:
            raise failure("durationSec must be positive")
        cloud, local = engine.presence(camera, start * 1000, (start + duration) * 1000)
        return ok(presenceWindows={"VideoCloud": seconds_json(cloud), "VideoLocal": seconds_json(local)})

    @bp.post("/video/getExactFrameUri", endpoint="get_frame_uri")
    def get_frame_uri() -> Response:
        data = json_body()
        camera = camera_or_fail(data.get("cameraUuid"))
        moment = integer(data, "timestampMs")
        if not engine.fetchable(camera, moment, moment + 1):
            raise failure("No footage is available for this camera at the requested time")
        return ok(frameUri=sim.frame_url(camera.id, moment))

    @bp.post("/video/spliceV3", endpoint="splice")
    def splice() -> Response:
        data = json_body()
        devices = data.get("deviceUuids")
        if not isinstance(devices, list) or not devices or not all(isinstance(d, str) for d in devices):
            raise failure("deviceUuids must be a non-empty list of camera facets such as <cameraUuid>.v0")
        start, duration = integer(data, "startTimeMillis"), integer(data, "durationSec")
        if duration <= 0:
            raise failure("durationSec must be positive")
        if duration * len(devices) > engine.config.max_clip_seconds:
            raise failure(f"The total clip duration must not exceed {engine.config.max_clip_seconds} seconds")
        if len(devices) > 1:
            raise failure("Splicing several devices into one clip is not supported by this simulator")
        if not devices[0].endswith(FACET):
            raise failure(f"Invalid device facet {devices[0]!r}; expected <cameraUuid>{FACET}")
        camera = camera_or_fail(devices[0][: -len(FACET)])
        title = data.get("title") if isinstance(data.get("title"), str) else ""
        details = {"deviceUuids": devices, "startTimeMillis": start, "durationSec": duration, "title": title}
        clip_uuid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        job = engine.create_clip(camera, start, start + duration * 1000, details, clip_uuid)
        g.job_id = job.id
        engine.after_create()  # the crash window: the clip is saved, the client has not heard of it yet
        return ok(clipUuid=job.id)

    @bp.post("/event/getClipsWithProgress", endpoint="list_clips")
    def list_clips() -> Response:
        """The organisation's saved clips with their progress, a page at a time (`pageToken` null on the
        last). A time range is required (timestampMsAfter/Before, matched against the clip's footage
        time); `searchFilter` searches titles (case-insensitive); device and location filters apply."""
        data = json_body()
        after, before = integer(data, "timestampMsAfter"), integer(data, "timestampMsBefore")
        if before <= after:
            raise failure("timestampMsBefore must be after timestampMsAfter")
        if data.get("timestampFilterField") is not None:
            raise failure("timestampFilterField is not supported by this simulator")
        size = data.get("pageSize")
        if size is None:
            size = LIST_PAGE_DEFAULT
        elif isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= LIST_PAGE_MAX:
            raise failure(f"pageSize must be an integer from 1 to {LIST_PAGE_MAX}")
        size = min(size, engine.config.max_page_size)  # a page may hold fewer than asked: follow pageToken
        offset = page_offset(data.get("pageToken"))
        search = optional_string(data, "searchFilter")
        devices = string_list(data, "deviceUuidFilters")
        locations = string_list(data, "locationUuidFilters")
        visibility = data.get("clipVisibilityFilter")
        if visibility is not None and visibility not in CLIP_VISIBILITY:
            raise failure(f"clipVisibilityFilter must be one of {', '.join(CLIP_VISIBILITY)}")
        found = []
        for job in engine.jobs.all():
            camera = engine.cameras.get(job.camera_id)
            if job.deleted or not after <= job.start_ms < before:
                continue
            if search is not None and search.lower() not in str(job.details.get("title", "")).lower():
                continue
            if devices is not None and job.camera_id not in devices:
                continue
            if locations is not None and (camera is None or camera.location_id not in locations):
                continue
            found.append(job)
        page = found[offset : offset + size]
        token = page_token(offset + size) if offset + size < len(found) else None
        return ok(savedClips=[clip_json(sim, job) for job in page], pageToken=token)

    @bp.post("/event/getClipWithProgress", endpoint="get_clip")
    def get_clip() -> Response:
        return ok(clip=clip_json(sim, clip_or_fail(json_body(), "clipUuid")))

    @bp.post("/event/deleteSavedClip", endpoint="delete_clip")
    def delete_clip() -> Response:
        engine.jobs.delete(clip_or_fail(json_body(), "savedClipUuid").id, engine.now_ms())
        return ok()

    return bp


def media_blueprint(sim: RhombusSite) -> Blueprint:
    bp = Blueprint("rhombus_media", __name__, url_prefix="/media")
    engine = sim.engine

    @bp.before_request
    def authenticate() -> None:
        require_api_key(sim)

    def not_found() -> VmsError:
        return VmsError(404, "Not Found")

    @bp.get("/<path:camera_uuid>/<region>/snapshot.jpeg", endpoint="snapshot")
    def snapshot(camera_uuid: str, region: str) -> Response:
        camera = engine.cameras.get(camera_uuid)
        if camera is None or region != sim.region:
            raise not_found()
        if not camera.online:
            raise VmsError(503, "The camera is offline")
        captured = engine.now_ms() // 1000 * 1000  # the Date header says when, to the second
        response = image_response(sim, camera, captured)
        response.headers["Date"] = format_datetime(from_ms(captured), usegmt=True)
        return response

    @bp.get("/frames/<region>/<int:frame_ms>.jpeg", endpoint="frame")
    def frame(region: str, frame_ms: int) -> Response:
        if engine.signer.verify(request.path, request.args.to_dict()) is not Verdict.VALID:
            raise VmsError(403, "The frame URI has expired or its signature is not valid")
        camera = engine.cameras.get(request.args.get("cameraUuid", ""))
        if camera is None or region != sim.region:
            raise not_found()
        return image_response(sim, camera, frame_ms)

    @bp.get("/metadata/<region>/<clip_uuid>.mp4", endpoint="download_clip")
    def download_clip(region: str, clip_uuid: str) -> Response:
        job = engine.jobs.get(clip_uuid)
        if job is None or region != sim.region or job.phase(engine.now_ms())[0] is not Phase.SUCCEEDED:
            raise not_found()
        g.job_id = job.id
        return stream_response(request, job.stream, engine.download_behaviour(), content_type="video/mp4")

    return bp


def image_response(sim: RhombusSite, camera: Camera, captured_ms: int) -> Response:
    size = camera.snapshot_bytes if camera.snapshot_bytes is not None else sim.engine.config.snapshot_bytes
    return Response(snapshot_jpeg(camera.id, captured_ms, size), mimetype="image/jpeg")


def seconds_json(intervals: list[tuple[int, int]]) -> list[dict[str, int]]:
    """TimeWindowSeconds of the whole seconds inside each interval (a partial second is not claimed)."""
    windows = []
    for start_ms, end_ms in intervals:
        first, last = -(-start_ms // 1000), end_ms // 1000
        if last > first:
            windows.append({"startSeconds": first, "durationSeconds": last - first})
    return windows


def camera_state(sim: RhombusSite, camera: Camera) -> dict[str, Any]:
    """A cameraStates entry; an unknown position is null, or absent for cameras with no azimuth either."""
    state: dict[str, Any] = {
        "uuid": camera.id,
        "name": camera.name,
        "locationUuid": camera.location_id,
        "connectionStatus": "GREEN" if camera.online else "RED",
        "latitude": camera.latitude,
        "longitude": camera.longitude,
        "mediaRegion": sim.region,
        "serialNumber": camera.serial,
    }
    if not camera.has_position and camera.azimuth is None:
        del state["latitude"], state["longitude"]
    return state


def clip_json(sim: RhombusSite, job: Job) -> dict[str, Any]:
    """Event_SavedClipWithProgressType."""
    phase, progress = job.phase(sim.engine.now_ms())
    clip: dict[str, Any] = {
        "uuid": job.id,
        "title": job.details.get("title", ""),
        "status": CLIP_STATUS[phase],
        "percentComplete": {Phase.SUCCEEDED: 100, Phase.FAILED: 0}.get(phase, int(progress * 100)),
        "clipLocation": {"region": sim.region},
        "deviceUuids": job.details.get("deviceUuids", []),
        "timestampMs": job.start_ms,
        "durationSec": (job.end_ms - job.start_ms) // 1000,
        "createdAtMs": job.created_ms,
    }
    if phase is Phase.SUCCEEDED:
        clip["byteCount"] = job.stream.size
    return clip
