"""The EEN API v3 as a client sees it: the auth/global host and the per-account API host.

Field names, shapes and error bodies follow EEN's published OpenAPI schemas (written out here by
hand; the specs themselves are not part of this repository).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, Protocol

from flask import Blueprint, Response, g, jsonify, request

from devstack.registry_sim.auth import OAuthError

from .cameras import Camera
from .een_auth import EenAuth, oauth_status
from .engine import VmsEngine
from .errors import VmsError
from .jobs import Job, OutputFile, Phase
from .jpeg import snapshot_jpeg
from .serving import stream_response
from .signing import Verdict
from .timeutil import DAY_MS, format_een, parse_een


class EenSite(Protocol):
    """What these routes need from the simulator that serves them (een.py), so neither imports the other."""

    engine: VmsEngine
    auth: EenAuth
    account_id: str

    def https_base_url(self) -> dict[str, Any]: ...

    def mp4_url(self, stream_type: str, camera_id: str, start_ms: int, end_ms: int) -> str: ...

    def file_url(self, output: OutputFile) -> str: ...


API = "/api/v3.0"
MP4_PATH = "/media/streams/{type}/mp4"
FORM = "application/x-www-form-urlencoded"
FRAME_MS = 100  # recorded frames every 100 ms
JOB_EXPIRY_MS = 28 * DAY_MS
STREAM_TYPES = ("preview", "main")
MEDIA_TYPES = ("video", "image")
MEDIA_INCLUDES = ("flvUrl", "rtspUrl", "rtspsUrl", "multipartUrl", "mp4Url")
CAMERA_INCLUDES = (
    "status", "locationSummary", "deviceAddress", "timeZone", "notes", "tags", "devicePosition", "networkInfo",
    "deviceInfo", "firmware", "visibleByBridges", "capabilities", "effectivePermissions", "shareDetails", "analog",
    "qRelevance", "packages", "dewarpConfig", "adminCredentials", "publicSafetySharing", "enabledAnalytics",
)  # fmt: skip
JOB_STATES = {
    "spec": {Phase.PENDING: "pending", Phase.RUNNING: "started", Phase.SUCCEEDED: "success", Phase.FAILED: "failure"},
    "notes": {Phase.PENDING: "pending", Phase.RUNNING: "processing", Phase.SUCCEEDED: "done", Phase.FAILED: "failed"},
}
IMAGE_TIMESTAMPS = ("timestamp__lt", "timestamp__lte", "timestamp", "timestamp__gte", "timestamp__gt")
JOB_SORTS = ("createTimestamp", "updateTimestamp", "expireTimestamp", "state")
NAME_CONTAINS_MAX = 128
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# -- errors --------------------------------------------------------------------------------------

STATUS_NAMES = {
    400: "invalidArgument", 401: "unauthenticated", 403: "permissionDenied", 404: "notFound",
    405: "methodNotSupported", 406: "acceptNotSupported", 409: "conflict", 415: "mediaTypeNotSupported",
    429: "tooManyRequests", 500: "internal", 501: "unimplemented", 503: "unavailable", 504: "deadlineExceeded",
}  # fmt: skip
DEFAULT_REASONS = {
    400: "wrongArgumentValue", 401: "unauthenticated", 403: "invalidPermission", 404: "resourceNotFound",
    405: "methodNotSupported", 406: "acceptNotSupported", 409: "alreadyExists", 415: "contentNotSupported",
    429: "tooManyRequests", 503: "serviceUnavailable", 504: "deadlineExpired",
}  # fmt: skip


def error_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """EEN's ApiV3Error: {code, status, message, details[{type: errorInfo, reason, domain, metadata}]}."""
    return {
        "code": status,
        "status": STATUS_NAMES.get(status, "unknown" if status < 500 else "internal"),
        "message": message,
        "details": [
            {
                "type": "errorInfo",
                "reason": reason or DEFAULT_REASONS.get(status, "unexpectedError"),
                "domain": "apiv3",
                "metadata": {"path": request.path, "method": request.method},
            }
        ],
    }


def render_error(error: VmsError) -> Response:
    """EEN documents no Retry-After on 429; one is sent only when a scripted fault asks for it."""
    response = jsonify(error_body(error.status, error.detail, error.reason))
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def bad_argument(message: str, reason: str = "wrongArgumentValue") -> VmsError:
    return VmsError(400, message, reason=reason)


def require(names: tuple[str, ...]) -> None:
    missing = [name for name in names if not request.args.get(name)]
    if missing:
        raise bad_argument(f"Missing required arguments: {', '.join(missing)}", "missingRequiredArgument")


def one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad_argument(f"Invalid Argument: {name} must be one of {', '.join(allowed)}")
    return value


def timestamp_arg(name: str, text: str) -> int:
    try:
        return parse_een(text)
    except ValueError as error:
        raise bad_argument(f"Invalid Argument: {name}: {error}") from None


def list_arg(name: str, allowed: tuple[str, ...]) -> set[str]:
    values = {v.strip() for v in request.args.get(name, "").split(",") if v.strip()}
    unknown = values - set(allowed)
    if unknown:
        raise bad_argument(f"Invalid Argument: {name} has unknown value(s) {', '.join(sorted(unknown))}")
    return values


def name_contains_arg() -> str | None:
    """`name__contains`: 1 to 128 characters when given (EEN's `name1` schema)."""
    value = request.args.get("name__contains")
    if value is not None and not 1 <= len(value) <= NAME_CONTAINS_MAX:
        raise bad_argument(f"Invalid Argument: name__contains must be 1 to {NAME_CONTAINS_MAX} characters")
    return value


def sort_arg() -> list[str]:
    """`sort` of GET /jobs: comma-separated `+field`/`-field` (form style, not exploded)."""
    text = request.args.get("sort")
    if text is None:
        return ["-createTimestamp"]
    keys = [key.strip() for key in text.split(",")]
    allowed = [f"{sign}{field}" for field in JOB_SORTS for sign in "+-"]
    for key in keys:
        one_of("sort", key, tuple(allowed))
    return keys


def job_sort_key(sim: EenSite, field: str, job: Job) -> Any:
    if field == "state":
        return JOB_STATES[sim.engine.config.job_states][job.phase(sim.engine.now_ms())[0]]
    if field == "updateTimestamp":
        return min(sim.engine.now_ms(), job.finished_ms())
    return job.created_ms  # createTimestamp, and expireTimestamp (a fixed time after it)


# -- pagination ------------------------------------------------------------------------------------


def _page_token(offset: int, limit: int) -> str:
    return base64.urlsafe_b64encode(f"offset={offset}&limit={limit}".encode()).decode().rstrip("=")


def page_of(sim: EenSite, found: list[Any], render: Callable[[Any], Any]) -> dict[str, Any]:
    """One page of `found` in EEN's paginated shape (results, page tokens, totalSize)."""
    page, next_token, prev_token = paginate(sim, found)
    return {
        "results": [render(entry) for entry in page],
        "nextPageToken": next_token,
        "prevPageToken": prev_token,
        "totalSize": len(found),
    }


def paginate(sim: EenSite, items: list[Any]) -> tuple[list[Any], str | None, str]:
    """(page, nextPageToken, prevPageToken); pageSize is clamped to the configured range, never refused."""
    config = sim.engine.config
    size_text = request.args.get("pageSize")
    if size_text is None or size_text == "":
        size = config.default_page_size
    else:
        try:
            size = int(size_text)
        except ValueError:
            raise bad_argument("Invalid Argument: pageSize must be an integer") from None
    size = min(max(size, 1), config.max_page_size)
    offset = 0
    token = request.args.get("pageToken")
    if token:
        try:
            decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            offset = int(re.fullmatch(r"offset=(\d+)&limit=\d+", decoded)[1])  # type: ignore[index]
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
            raise bad_argument("Invalid Argument: pageToken is not valid") from None
    page = items[offset : offset + size]
    last = offset + size >= len(items)
    empty: str | None = "" if config.next_page_on_last == "empty" else None
    next_token = empty if last else _page_token(offset + size, size)
    prev_token = "" if offset == 0 else _page_token(max(offset - size, 0), size)
    return page, next_token, prev_token


# -- the global host: token endpoint and client settings ---------------------------------------------


def global_blueprint(sim: EenSite) -> Blueprint:
    bp = Blueprint("een_global", __name__)

    @bp.post("/oauth2/token", endpoint="token")
    def token() -> tuple[Response, int]:
        try:
            sim.auth.check_client(request.headers.get("Authorization"))
            if request.mimetype != FORM:
                raise OAuthError("invalid_request", f"the token request must be {FORM}")
            body = {**sim.auth.refresh(request.form.to_dict()), "httpsBaseUrl": sim.https_base_url()}
            status = 200
        except OAuthError as error:
            body, status = {"error": error.error, "error_description": error.description}, oauth_status(error)
        response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response, status

    @bp.get(API + "/clientSettings", endpoint="client_settings")
    def client_settings() -> Response:
        require_bearer(sim)
        return jsonify({"httpsBaseUrl": sim.https_base_url()})

    return bp


def require_bearer(sim: EenSite) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not sim.auth.is_valid(token.strip()):
        raise VmsError(
            401,
            "The client caller does not have a valid authentication credential",
            reason="unauthenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )


# -- the account host ---------------------------------------------------------------------------------


def account_blueprint(sim: EenSite) -> Blueprint:
    bp = Blueprint("een_account", __name__)
    engine = sim.engine

    @bp.before_request
    def authenticate() -> None:
        require_bearer(sim)

    def camera_or_404(device_id: str) -> Camera:
        camera = engine.cameras.get(device_id)
        if camera is None:
            raise VmsError(404, "The resource was not found", reason="resourceNotFound")
        return camera

    @bp.get(API + "/cameras", endpoint="list_cameras")
    def list_cameras() -> Response:
        includes = list_arg("include", CAMERA_INCLUDES)
        cameras = engine.cameras.all()
        page, next_token, prev_token = paginate(sim, cameras)
        return jsonify(
            {
                "results": [camera_json(sim, camera, includes) for camera in page],
                "nextPageToken": next_token,
                "prevPageToken": prev_token,
                "totalSize": len(cameras),
            }
        )

    @bp.get(API + "/media", endpoint="list_media")
    def list_media() -> Response:
        require(("deviceId", "type", "mediaType", "startTimestamp__gte"))
        stream_type = one_of("type", request.args["type"], STREAM_TYPES)
        media_type = one_of("mediaType", request.args["mediaType"], MEDIA_TYPES)
        start = timestamp_arg("startTimestamp__gte", request.args["startTimestamp__gte"])
        end_text = request.args.get("endTimestamp__lte")
        end = timestamp_arg("endTimestamp__lte", end_text) if end_text else engine.now_ms()
        includes = list_arg("include", MEDIA_INCLUDES)
        camera = camera_or_404(request.args["deviceId"])
        listed = engine.recording_spans if engine.config.unclipped_media_intervals else engine.recordings
        intervals = listed(camera, start, end) if end > start else []
        page, next_token, prev_token = paginate(sim, intervals)
        results = []
        for s, e in page:
            item: dict[str, Any] = {
                "type": stream_type, "deviceId": camera.id, "mediaType": media_type,
                "startTimestamp": format_een(s), "endTimestamp": format_een(e),
            }  # fmt: skip
            if "mp4Url" in includes and media_type == "video":
                item["mp4Url"] = sim.mp4_url(stream_type, camera.id, s, e)
            results.append(item)
        return jsonify({"results": results, "nextPageToken": next_token, "prevPageToken": prev_token})

    @bp.get(MP4_PATH.format(type="<stream_type>"), endpoint="media_stream")
    def media_stream(stream_type: str) -> Response:
        verdict = engine.signer.verify(request.path, request.args.to_dict())
        if verdict is not Verdict.VALID:
            raise VmsError(403, "The media URL has expired or its signature is not valid", reason="invalidPermission")
        camera = camera_or_404(request.args.get("deviceId", ""))
        start = parse_een(request.args["startTimestamp"])
        end = parse_een(request.args["endTimestamp"])
        stream = engine.recording_stream(camera.id, start, end)
        return stream_response(request, stream, engine.download_behaviour(), content_type="video/mp4")

    @bp.get(API + "/media/liveImage.jpeg", endpoint="live_image")
    def live_image() -> Response:
        require(("deviceId", "type"))
        one_of("type", request.args["type"], ("preview",))
        camera = camera_or_404(request.args["deviceId"])
        if not camera.online:
            message = "The resource is currently not available, please try later again"
            raise VmsError(503, message, reason="deviceUnavailable")
        return image_response(sim, camera, engine.now_ms() // FRAME_MS * FRAME_MS)

    @bp.get(API + "/media/recordedImage.jpeg", endpoint="recorded_image")
    def recorded_image() -> Response:
        require(("deviceId", "type"))
        stream_type = one_of("type", request.args["type"], STREAM_TYPES)
        given = [name for name in IMAGE_TIMESTAMPS if request.args.get(name)]
        if len(given) != 1:
            raise bad_argument(f"Exactly one of {', '.join(IMAGE_TIMESTAMPS)} is required", "missingRequiredArgument")
        moment = timestamp_arg(given[0], request.args[given[0]])
        camera = camera_or_404(request.args["deviceId"])
        limit = engine.config.recorded_image_rate_per_second
        if stream_type == "main" and not engine.rate.allow("recordedImage.main", limit):
            raise VmsError(429, "Too many requests for main images, please slow down", reason="tooManyRequests")
        frame = find_frame(sim, camera, given[0], moment)
        if frame is None:
            raise VmsError(404, "No recorded image was found for the requested time", reason="resourceNotFound")
        return image_response(sim, camera, frame)

    @bp.post(API + "/exports", endpoint="create_export")
    def create_export() -> tuple[Response, int]:
        details = export_request(sim)
        camera = camera_or_404(details["deviceId"])
        if engine.jobs.live_count() >= engine.config.max_exports:
            raise VmsError(429, "Too many export jobs for this account", reason="quotaExceeded")
        start, end = details["_period"]
        folder: Literal["archive", "downloads"] = "downloads" if details.get("autoDelete") else "archive"
        job = engine.create_export(camera, start, end, details, folder=folder, directory=details["info"]["directory"])
        for index, output in enumerate(job.files):
            output.name = file_name(details["info"]["name"], output, index)
        g.job_id = job.id
        engine.after_create()  # the crash window: the export exists, the client has not heard of it yet
        return jsonify({"id": job.id}), 201

    @bp.get(API + "/users/self", endpoint="current_user")
    def current_user() -> Response:
        """ApiUserForSingle's required fields (the agent needs only `id`, which GET /jobs requires)."""
        return jsonify(
            {
                "id": sim.auth.user_id, "firstName": "Clearance", "lastName": "Agent", "accountId": sim.account_id,
                "email": "clearance-agent@example.com", "language": "en", "employeeId": None,
            }
        )  # fmt: skip

    @bp.get(API + "/jobs", endpoint="list_jobs")
    def list_jobs() -> Response:
        """PaginatedJobResponse. `userId` is required (EEN lists one user's jobs); namespace, type, state,
        state__in and createTimestamp__gte/__lte filter; sort orders (default -createTimestamp)."""
        require(("userId",))
        now = engine.now_ms()
        vocabulary = JOB_STATES[engine.config.job_states]
        states = (*vocabulary.values(), "revoked")
        state = request.args.get("state")
        if state is not None:
            one_of("state", state, states)
        wanted = list_arg("state__in", states) if request.args.get("state__in") else None
        low, high = (
            timestamp_arg(name, request.args[name]) if request.args.get(name) else None
            for name in ("createTimestamp__gte", "createTimestamp__lte")
        )
        ours = (
            request.args["userId"] == sim.auth.user_id
            and request.args.get("namespace") in (None, "export")
            and request.args.get("type") in (None, "export.video")
        )  # every job of this simulator is an export.video job of its one user
        found = []
        for job in engine.jobs.all() if ours else []:
            rendered = vocabulary[job.phase(now)[0]]
            if job.deleted:
                continue
            if (state is not None and rendered != state) or (wanted is not None and rendered not in wanted):
                continue
            if (low is not None and job.created_ms < low) or (high is not None and job.created_ms > high):
                continue
            found.append(job)
        for key in reversed(sort_arg()):  # stable sorts: the first key given ends up the primary one
            found.sort(key=partial(job_sort_key, sim, key[1:]), reverse=key.startswith("-"))
        return jsonify(page_of(sim, found, lambda job: job_json(sim, job)))

    def job_or_404(job_id: str) -> Job:
        if not _UUID.match(job_id):
            raise bad_argument("Invalid Argument: jobId must be a uuid")
        job = engine.jobs.get(job_id)
        if job is None:
            raise VmsError(404, "The resource was not found", reason="resourceNotFound")
        g.job_id = job.id
        return job

    @bp.get(API + "/jobs/<job_id>", endpoint="get_job")
    def get_job(job_id: str) -> Response:
        return jsonify(job_json(sim, job_or_404(job_id)))

    @bp.delete(API + "/jobs/<job_id>", endpoint="delete_job")
    def delete_job(job_id: str) -> Response:
        engine.jobs.delete(job_or_404(job_id).id, engine.now_ms())
        return Response(status=204)

    def file_or_404(file_id: str, folder: str, state: str = "present") -> OutputFile:
        if not _UUID.match(file_id):
            raise bad_argument("Invalid Argument: id must be a uuid")
        found = engine.jobs.file(file_id, engine.now_ms())
        if found is None or found[1].folder != folder or found[1].state != state:
            raise VmsError(404, "The resource was not found", reason="resourceNotFound")
        g.job_id = found[0].id
        return found[1]

    def serve_file(output: OutputFile) -> Response:
        return stream_response(
            request, output.stream, engine.download_behaviour(), content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{output.name}"'},
        )  # fmt: skip

    @bp.get(API + "/files/<file_id>:download", endpoint="download_file")
    def download_file(file_id: str) -> Response:
        return serve_file(file_or_404(file_id, "archive"))

    @bp.get(API + "/downloads/<file_id>:download", endpoint="download_download")
    def download_download(file_id: str) -> Response:
        return serve_file(file_or_404(file_id, "downloads"))

    @bp.get(API + "/files", endpoint="list_files")
    def list_files() -> Response:
        directory, name = request.args.get("directory"), request.args.get("name")
        contains = name_contains_arg()
        found = [
            output for _, output in engine.jobs.files(engine.now_ms())
            if output.folder == "archive" and output.state == "present"
            and (directory is None or output.directory == directory) and (name is None or output.name == name)
            and (contains is None or contains in output.name)
        ]  # fmt: skip
        return jsonify(page_of(sim, found, lambda output: file_item_json(output)))

    @bp.get(API + "/deletedFiles", endpoint="list_deleted_files")
    def list_deleted_files() -> Response:
        """The recycle bin (ApiPaginatedFileResponseSlim), filtered by name or name__contains."""
        name, contains = request.args.get("name"), name_contains_arg()
        found = [
            output for _, output in engine.jobs.files(engine.now_ms())
            if output.folder == "archive" and output.state == "recycled"
            and (name is None or output.name == name) and (contains is None or contains in output.name)
        ]  # fmt: skip
        return jsonify(page_of(sim, found, lambda output: file_item_json(output)))

    @bp.delete(API + "/files/<file_id>", endpoint="delete_file")
    def delete_file(file_id: str) -> Response:
        engine.jobs.set_state(file_or_404(file_id, "archive").id, "recycled")
        return Response(status=204)

    @bp.delete(API + "/deletedFiles/<file_id>", endpoint="delete_trash_file")
    def delete_trash_file(file_id: str) -> Response:
        engine.jobs.set_state(file_or_404(file_id, "archive", "recycled").id, "purged")
        return Response(status=204)

    return bp


# -- response bodies ----------------------------------------------------------------------------------


def camera_json(sim: EenSite, camera: Camera, includes: set[str]) -> dict[str, Any]:
    """ApiCameraForList; included objects omit unknown (null) fields, as EEN does."""
    body: dict[str, Any] = {
        "id": camera.id,
        "accountId": sim.account_id,
        "name": camera.name,
        "bridgeId": camera.bridge_id,
        "locationId": str(uuid.uuid5(uuid.NAMESPACE_URL, camera.location_id)),
        "multiCameraId": None,
        "createTimestamp": format_een(camera.created_ms),
    }
    if "status" in includes:
        body["status"] = {"connectionStatus": "online" if camera.online else "deviceOffline"}
    if "timeZone" in includes:
        body["timeZone"] = {"zone": camera.time_zone}
    if "devicePosition" in includes:
        position = {
            "latitude": camera.latitude, "longitude": camera.longitude, "azimuth": camera.azimuth,
            "floor": camera.floor,
        }  # fmt: skip
        known = {name: value for name, value in position.items() if value is not None}
        if known:
            body["devicePosition"] = known
    return body


def find_frame(sim: EenSite, camera: Camera, condition: str, moment: int) -> int | None:
    """The time of the recorded frame that matches `condition` (timestamp__lte etc.), if any."""
    engine = sim.engine
    if condition in ("timestamp__lt", "timestamp__lte", "timestamp"):
        target = moment - 1 if condition == "timestamp__lt" else moment
        for start, end in reversed(engine.recordings(camera, target - 8 * DAY_MS, target + 1)):
            frame = min(target, end - 1) // FRAME_MS * FRAME_MS
            if frame >= start:
                return None if condition == "timestamp" and target - frame >= FRAME_MS else frame
            if condition == "timestamp":
                return None
        return None
    target = moment + 1 if condition == "timestamp__gt" else moment
    for start, end in engine.recordings(camera, target, engine.now_ms()):
        frame = -(-max(target, start) // FRAME_MS) * FRAME_MS
        if frame < end:
            return frame
    return None


def export_request(sim: EenSite) -> dict[str, Any]:
    """A validated VideoExportDetails body, plus "_period" (start, end) in epoch ms."""
    data = request.get_json(silent=True)
    if not request.is_json:
        raise VmsError(415, "Unsupported content type, should be application/json", reason="contentNotSupported")
    if not isinstance(data, dict):
        raise bad_argument("Invalid JSON", "invalidJSON")
    missing = [name for name in ("deviceId", "type", "period", "info") if name not in data]
    period, info = data.get("period"), data.get("info")
    if isinstance(period, dict) and "startTimestamp" not in period:
        missing.append("period.startTimestamp")
    if isinstance(info, dict):
        missing += [f"info.{name}" for name in ("name", "directory") if name not in info]
    if missing:
        raise bad_argument(f"Missing required arguments: {', '.join(missing)}", "missingRequiredArgument")
    if not isinstance(data["deviceId"], str) or not isinstance(period, dict) or not isinstance(info, dict):
        raise bad_argument("Invalid Argument: deviceId must be a string, period and info objects")
    if data["type"] not in ("video", "timeLapse", "bundle"):
        raise bad_argument("Invalid Argument: type must be one of video, timeLapse, bundle")
    if data["type"] != "video":
        raise bad_argument("Invalid Argument: only video exports are available for this device")
    name, directory = info["name"], info["directory"]
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or "/" in name:
        raise bad_argument("Invalid Argument: info.name must be 1 to 64 characters without '/'")
    if not isinstance(directory, str) or len(directory) > 256:
        raise bad_argument("Invalid Argument: info.directory must be a string of at most 256 characters")
    if "autoDelete" in data and not isinstance(data["autoDelete"], bool):
        raise bad_argument("Invalid Argument: autoDelete must be a boolean")
    start = _period_time(period, "startTimestamp")
    end = _period_time(period, "endTimestamp") if period.get("endTimestamp") is not None else sim.engine.now_ms()
    if end <= start:
        raise bad_argument("Invalid Argument: period.endTimestamp must be after period.startTimestamp")
    if end - start > sim.engine.config.max_export_seconds * 1000:
        raise bad_argument("Invalid Argument: the duration of the period can't exceed 8 hours")
    return {**data, "_period": (start, end)}


def _period_time(period: dict[str, Any], name: str) -> int:
    value = period.get(name)
    if not isinstance(value, str):
        raise bad_argument(f"Invalid Argument: period.{name} must be a string")
    return timestamp_arg(f"period.{name}", value)


def image_response(sim: EenSite, camera: Camera, frame_ms: int) -> Response:
    """A camera's JPEG of the frame at `frame_ms`, which X-Een-Timestamp and the image's comment both name."""
    size = camera.snapshot_bytes if camera.snapshot_bytes is not None else sim.engine.config.snapshot_bytes
    image = snapshot_jpeg(camera.id, frame_ms, size)
    return Response(image, mimetype="image/jpeg", headers={"X-Een-Timestamp": format_een(frame_ms)})


def file_item_json(output: OutputFile) -> dict[str, Any]:
    """ApiFileGetWithIncludes with the default fields."""
    return {"id": output.id, "directory": output.directory, "mimeType": "video/mp4", "name": output.name}


def file_name(export_name: str, output: OutputFile, index: int) -> str:
    stamp = format_een(output.interval[0])[:19].replace("T", " ").replace(":", "-")
    return f"{export_name} {stamp}.mp4" if index == 0 else f"{export_name} {stamp} ({index + 1}).mp4"


def job_json(sim: EenSite, job: Job) -> dict[str, Any]:
    """A Job in the configured state vocabulary (spec: the OpenAPI `Job` oneOf, by `state`)."""
    now = sim.engine.now_ms()
    phase, progress = job.phase(now)
    arguments = {name: value for name, value in job.details.items() if not name.startswith("_")}
    missing = [{"startTimestamp": format_een(s), "endTimestamp": format_een(e)} for s, e in job.missing]
    total = len(job.files)
    body: dict[str, Any] = {
        "id": job.id,
        "type": "export.video",
        "namespace": "export",
        "arguments": arguments,
        "userId": sim.auth.user_id,
        "createTimestamp": format_een(job.created_ms),
        "updateTimestamp": format_een(min(now, job.finished_ms())),
        "expireTimestamp": format_een(job.created_ms + JOB_EXPIRY_MS),
        "state": JOB_STATES[sim.engine.config.job_states][phase],
        "detailedState": None,
        "progress": progress,
        "result": None,
        "error": None,
    }
    if phase is Phase.RUNNING:
        body["detailedState"] = {"intervals": {"totalIntervals": total, "finishedIntervals": int(progress * total)}}
    elif phase is Phase.SUCCEEDED:
        body["detailedState"] = {
            "intervals": {"totalIntervals": total, "finishedIntervals": total, "missingIntervals": missing}
        }
        body["result"] = {
            "files": [
                {
                    "name": output.name,
                    "size": output.stream.size,
                    "mimetype": "video/mp4",
                    "url": sim.file_url(output),
                    "description": f"Video export of {job.camera_id}",
                }
                for output in job.files
            ]
        }
    elif phase is Phase.FAILED:
        intervals = {"totalIntervals": total, "finishedIntervals": 0, "missingIntervals": missing}
        body["detailedState"] = {"intervals": intervals}
        status, reason = (404, "resourceNotFound") if not job.recorded else (500, "unexpectedError")
        message = "No recordings were found in the requested period" if not job.recorded else "The export failed"
        body["error"] = {
            "code": status,
            "status": STATUS_NAMES[status],
            "message": message,
            "details": [{"type": "errorInfo", "reason": reason, "domain": "apiv3"}],
        }
    return body
