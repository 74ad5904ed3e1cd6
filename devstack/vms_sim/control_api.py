"""The control API under /_sim/ (no auth, PascalCase JSON), the same on every server of a profile.

Errors are RFC 9457 problem details, like the Registry simulator's control API.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from devstack.registry_sim.bodies import Body
from devstack.registry_sim.clock import format_utc
from devstack.registry_sim.control_api import add_clock_and_config_routes
from devstack.registry_sim.faults import StatusFault
from devstack.registry_sim.problems import ProblemError, problem_response

from .camera_media import add_camera_media_routes
from .cameras import MAX_CAMERAS, Camera
from .faults import CREATE_KINDS, JOB_KINDS, MAX_HOLD_SECONDS, STREAM_KINDS, CreateFault, StreamFault
from .intervals import Interval, normalise
from .jobs import Job
from .profile import Profile
from .timeutil import DAY_MS, format_een, parse_iso

CONTROL_PREFIX = "/_sim"


def body() -> Body:
    """Control bodies are optional JSON objects (names case-insensitive)."""
    return Body.of(request) if request.get_data() else Body({})


def optional_int(data: Body, name: str, default: int | None, minimum: int = 0) -> int | None:
    return default if data.raw(name) is None else data.integer(name, minimum=minimum)


def time_ms(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise ProblemError(400, f"{name} must be an ISO-8601 time string")
    try:
        return parse_iso(value)
    except ValueError:
        raise ProblemError(400, f"{name} must be an ISO-8601 time with Z or an offset") from None


def parse_intervals(value: Any) -> list[Interval]:
    if not isinstance(value, list) or not all(isinstance(i, list) and len(i) == 2 for i in value):
        raise ProblemError(400, "Intervals must be a list of [start, end] ISO-8601 pairs")
    intervals = [(time_ms(s, "Intervals start"), time_ms(e, "Intervals end")) for s, e in value]
    if any(e <= s for s, e in intervals):
        raise ProblemError(400, "every interval must end after it starts")
    return normalise(intervals)


def intervals_json(intervals: list[Interval]) -> list[list[str]]:
    return [[format_een(s), format_een(e)] for s, e in intervals]


def control_blueprint(profile: Profile) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix=CONTROL_PREFIX)
    engine = profile.engine

    @bp.errorhandler(ProblemError)
    def problem(error: ProblemError) -> Response:
        return problem_response(error.status, error.detail, error.headers)

    def camera_or_404(camera_id: str) -> Camera:
        camera = engine.cameras.get(camera_id)
        if camera is None:
            raise ProblemError(404, f"no camera {camera_id}")
        return camera

    @bp.get("/info")
    def info() -> Response:
        return jsonify(
            {
                "Vendor": profile.vendor,
                "Seed": engine.cameras.seed,
                "CameraCount": len(engine.cameras.all()),
                "NowUtc": format_utc(engine.clock.now()),
                **profile.info(),
            }
        )

    # cameras and recordings ----------------------------------------------------------------

    @bp.get("/cameras")
    def cameras() -> Response:
        return jsonify([camera.summary() for camera in engine.cameras.all()])

    @bp.post("/cameras/seed")
    def seed() -> Response:
        data = body()
        count = optional_int(data, "Count", engine.cameras.count)
        seed_text = data.raw("Seed") or engine.cameras.seed
        if not isinstance(seed_text, str) or (count or 0) > MAX_CAMERAS:
            raise ProblemError(400, f"Seed must be a string and Count at most {MAX_CAMERAS}")
        engine.cameras.reseed(seed_text, count or 0)
        return jsonify([camera.summary() for camera in engine.cameras.all()])

    @bp.post("/cameras")
    def add_camera() -> tuple[Response, int]:
        try:
            camera = engine.cameras.add(_camera_changes(body(), adding=True))
        except KeyError:
            raise ProblemError(409, "a camera with this Id already exists") from None
        return jsonify(camera.summary()), 201

    # ids are matched as paths: a chosen id may hold "/" (send it percent-encoded, "." as %2E)
    @bp.patch("/cameras/<path:camera_id>")
    def update_camera(camera_id: str) -> Response:
        camera_or_404(camera_id)
        camera = engine.cameras.update(camera_id, **_camera_changes(body(), adding=False))
        assert camera is not None
        return jsonify(camera.summary())

    @bp.delete("/cameras/<path:camera_id>")
    def remove_camera(camera_id: str) -> Response:
        if not engine.cameras.remove(camera_id):
            raise ProblemError(404, f"no camera {camera_id}")
        return Response(status=204)

    @bp.get("/cameras/<path:camera_id>/recordings")
    def recordings(camera_id: str) -> Response:
        camera = camera_or_404(camera_id)
        now = engine.now_ms()
        start = time_ms(request.args["start"], "start") if "start" in request.args else now - 8 * DAY_MS
        end = time_ms(request.args["end"], "end") if "end" in request.args else now
        return jsonify({"CameraId": camera_id, "Intervals": intervals_json(engine.recordings(camera, start, end))})

    @bp.put("/cameras/<path:camera_id>/recordings")
    def set_recordings(camera_id: str) -> Response:
        camera_or_404(camera_id)
        given = body().raw("Intervals")
        explicit = None if given is None else parse_intervals(given)
        engine.cameras.update(camera_id, explicit_recordings=explicit)
        return jsonify({"CameraId": camera_id, "Intervals": None if explicit is None else intervals_json(explicit)})

    # streams -------------------------------------------------------------------------------

    @bp.post("/streams/info")
    def stream_info() -> Response:
        data = body()
        url = data.raw("Url")
        if isinstance(url, str) and url:
            return jsonify(engine.stream_info(profile.resolve_url(url)))
        camera = camera_or_404(data.required_string("CameraId"))
        start, end = time_ms(data.raw("Start"), "Start"), time_ms(data.raw("End"), "End")
        if end <= start:
            raise ProblemError(400, "End must be after Start")
        if data.raw("RecordedOnly"):
            return jsonify(engine.stream_info(engine.recorded_parts_stream(camera, start, end)))
        return jsonify(engine.stream_info(engine.recording_stream(camera.id, start, end)))

    @bp.post("/media-urls/expire")
    def expire_media_urls() -> Response:
        engine.signer.expire_all()
        return Response(status=204)

    # jobs (EEN exports, Rhombus clips) -------------------------------------------------------

    @bp.get("/jobs")
    def jobs() -> Response:
        return jsonify([_job_json(profile, job) for job in engine.jobs.all()])

    @bp.get("/leftovers")
    def leftovers() -> Response:
        """What would stay in the customer's account: EEN export jobs or Rhombus saved clips not deleted
        (Kind "job", with the export's name or the clip's title as Name), export files not deleted for
        good (Kind "file": in the archive, its recycle bin or its read-only downloads folder)."""
        return jsonify(engine.leftovers())

    # faults, clock, config, log, reset ----------------------------------------------------------

    @bp.get("/faults")
    def faults() -> Response:
        return jsonify(engine.faults.to_json())

    @bp.delete("/faults")
    def clear_faults() -> Response:
        engine.faults.reset()
        return Response(status=204)

    @bp.post("/faults")
    def add_fault() -> tuple[Response, int]:
        data = body()
        kind = data.required_string("Kind")
        count = optional_int(data, "Count", None, minimum=1)
        if kind in STREAM_KINDS:
            value = (
                0
                if kind in ("Chunked", "IgnoreRange")
                else data.integer("BytesPerSecond" if kind == "Trickle" else "AfterBytes")
            )
            if kind == "Trickle" and value < 1:
                raise ProblemError(400, "BytesPerSecond must be >= 1")
            engine.faults.add_stream(StreamFault(kind, value, count))
        elif kind in JOB_KINDS:
            engine.faults.add_job_fault(kind, count or 1)
        elif kind in CREATE_KINDS:
            seconds = optional_int(data, "Seconds", None, minimum=1) if kind == "HoldAfterCreate" else None
            if seconds is not None and seconds > MAX_HOLD_SECONDS:
                raise ProblemError(400, f"Seconds must be at most {MAX_HOLD_SECONDS}")
            engine.faults.set_create_fault(CreateFault(kind, count or 1, seconds))
        elif kind in ("Status", "Latency"):
            operation = data.required_string("Operation")
            if operation not in profile.operations:
                raise ProblemError(400, f"Operation must be one of {', '.join(profile.operations)}")
            if kind == "Latency":
                engine.faults.set_latency(operation, data.integer("LatencyMs"))
            else:
                engine.faults.add_status(_status_fault(profile, data, operation, count or 1))
        else:
            kinds = ("Status", "Latency", *STREAM_KINDS, *JOB_KINDS, *CREATE_KINDS)
            raise ProblemError(400, f"Kind must be one of {', '.join(kinds)}")
        return jsonify(engine.faults.to_json()), 201

    @bp.post("/faults/release")
    def release_held() -> Response:
        """Lets every answer held by HoldAfterCreate go (to a client that may be gone by now)."""
        return jsonify({"Released": engine.faults.release()})

    add_clock_and_config_routes(bp, engine.clock, engine.config)

    @bp.get("/requests")
    def requests_log() -> Response:
        since = request.args.get("since", "0")
        if not since.isdigit():
            raise ProblemError(400, "since must be a non-negative integer")
        return jsonify(engine.requests.since(int(since)))

    @bp.get("/requests/summary")
    def requests_summary() -> Response:
        return jsonify(engine.request_summary())

    @bp.post("/reset")
    def reset() -> Response:
        profile.reset()
        return Response(status=204)

    add_camera_media_routes(bp, engine)
    profile.extend_control(bp)
    return bp


def _camera_changes(data: Body, *, adding: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, attr, kind in (
        ("Name", "name", str), ("Online", "online", bool), ("TimeZone", "time_zone", str),
        ("Latitude", "latitude", float), ("Longitude", "longitude", float), ("Azimuth", "azimuth", float),
    ):  # fmt: skip
        value = data.raw(name)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        valid = number if kind is float else isinstance(value, kind)
        if not valid:
            raise ProblemError(400, f"{name} has the wrong type")
        changes[attr] = float(value) if kind is float else value
    snapshot_bytes = data.raw("SnapshotBytes")
    if snapshot_bytes is not None:
        if isinstance(snapshot_bytes, bool) or not isinstance(snapshot_bytes, int) or snapshot_bytes < 0:
            raise ProblemError(400, "SnapshotBytes must be a non-negative integer")
        changes["snapshot_bytes"] = snapshot_bytes
    if data.raw("LocalOnly") is not None:
        changes["local_only"] = parse_intervals(data.raw("LocalOnly"))
    gap = data.raw("GapMinutesPerHour")
    if gap is not None:
        if isinstance(gap, bool) or not isinstance(gap, int) or not 0 <= gap <= 50:
            raise ProblemError(400, "GapMinutesPerHour must be an integer from 0 to 50")
        changes["gap_minutes"] = gap
    camera_id = data.raw("Id")
    if adding and camera_id is not None:
        if not isinstance(camera_id, str) or not camera_id:
            raise ProblemError(400, "Id must be a non-empty string")
        changes["id"] = camera_id
    if adding and data.raw("Recordings") == "none":
        changes["explicit_recordings"] = []
    elif adding and data.raw("Recordings") is not None:
        changes["explicit_recordings"] = parse_intervals(data.raw("Recordings"))
    return changes


def _status_fault(profile: Profile, data: Body, operation: str, count: int) -> StatusFault:
    status = data.integer("Status", minimum=200)
    if status > 599 or (status < 400 and not (status == 200 and profile.status_200_faults)):
        allowed = "200 (error: true) or 400-599" if profile.status_200_faults else "400-599"
        raise ProblemError(400, f"Status must be {allowed}")
    detail = data.raw("Detail")
    if detail is not None and not isinstance(detail, str):
        raise ProblemError(400, "Detail must be a string")
    return StatusFault(
        operation=operation,
        status=status,
        remaining=count,
        retry_after=optional_int(data, "RetryAfter", None),
        detail=detail,
    )


def _job_json(profile: Profile, job: Job) -> dict[str, Any]:
    phase, progress = job.phase(profile.engine.now_ms())
    urls = profile.job_urls(job.id)
    return {
        "Id": job.id,
        "CameraId": job.camera_id,
        "Start": format_een(job.start_ms),
        "End": format_een(job.end_ms),
        "Phase": phase.value,
        "Progress": progress,
        "Deleted": job.deleted,
        "Recorded": intervals_json(job.recorded),
        "Missing": intervals_json(job.missing),
        "Size": job.stream.size,
        "Url": profile.job_url(job.id),
        "Files": [
            {
                "Id": f.id,
                "Name": f.name,
                "Size": f.stream.size,
                "Folder": f.folder,
                "State": f.state,
                "Url": urls.get(f.id),
            }
            for f in job.files
        ],
    }
