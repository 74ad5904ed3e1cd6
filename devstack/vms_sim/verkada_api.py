"""The Verkada API as a client sees it: tokens, cameras, thumbnails and HLS footage on one API host.

Strict where Verkada is: the API key only mints tokens (`POST /token`, `x-api-key`); every other API
call needs a live `x-verkada-auth` token (expired: 401 `{"id": "0e2d", "message": "Token expired"}`);
the streaming routes need a live streaming JWT in the `jwt` query parameter, the organisation's id, a
window of at most one hour and `type=stream`. Errors are `{"id", "message", "data"}`. Past 300 requests
a minute the organisation gets 429s and a 5-second cooldown in which every request is refused again.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import deque
from datetime import UTC
from typing import Any, Protocol

from flask import Blueprint, Response, jsonify, request

from .cameras import Camera
from .engine import VmsEngine
from .errors import VmsError
from .jpeg import snapshot_jpeg
from .serving import stream_response
from .timeutil import HOUR_MS, from_ms
from .verkada_media import BytesStream, segment_spans, ts_segment


class VerkadaSite(Protocol):
    """What these routes need from the simulator that serves them (verkada.py), so neither imports the other."""

    engine: VmsEngine
    api_key: str
    org_id: str
    site_id: str
    tokens: Tokens
    rate: OrgRateLimit

    def thumbnail_time(self, camera: Camera, asked_ms: int) -> int | None: ...


MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 100
STREAM_PREFIX = "/stream/cameras/v1/footage/stream"
ERROR_IDS = {400: "4a1c", 401: "7f3b", 403: "93d0", 404: "b21e", 429: "c5e8", 500: "e001", 503: "e503"}
TOKEN_EXPIRED_ID = "0e2d"  # noqa: S105 - the error id Verkada documents for an expired token


def render_error(error: VmsError) -> Response:
    response = jsonify(
        {"id": error.reason or ERROR_IDS.get(error.status, "e000"), "message": error.detail, "data": None}
    )
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


class Tokens:
    """API tokens and streaming JWTs with their expiry (simulator clock), and how many were minted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api: dict[str, int] = {}
        self._jwt: dict[str, int] = {}
        self.api_minted = 0
        self.jwt_minted = 0
        self._issued: list[str] = []  # every token ever minted (never reset)

    def issued(self) -> list[str]:
        """Every API token and streaming JWT minted (for tests that look for them at rest)."""
        with self._lock:
            return list(self._issued)

    def mint(self, kind: str, expires_ms: int) -> str:
        value = ("v2_" if kind == "api" else "jwt_vkda_") + secrets.token_urlsafe(24)
        with self._lock:
            (self._api if kind == "api" else self._jwt)[value] = expires_ms
            self._issued.append(value)
            if kind == "api":
                self.api_minted += 1
            else:
                self.jwt_minted += 1
        return value

    def check(self, kind: str, value: str, now_ms: int) -> VmsError | None:
        with self._lock:
            expires = (self._api if kind == "api" else self._jwt).get(value)
        if expires is None:
            return VmsError(401, "Invalid token" if kind == "api" else "Invalid JWT")
        if now_ms >= expires:
            return VmsError(401, "Token expired", reason=TOKEN_EXPIRED_ID)
        return None

    def expire_all(self) -> None:
        with self._lock:
            self._api = dict.fromkeys(self._api, 0)
            self._jwt = dict.fromkeys(self._jwt, 0)

    def reset(self) -> None:
        with self._lock:
            self._api.clear()
            self._jwt.clear()
            self.api_minted = self.jwt_minted = 0

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {"ApiTokensMinted": self.api_minted, "StreamTokensMinted": self.jwt_minted}


class OrgRateLimit:
    """Verkada's documented limit, in real time: `limit` requests per sliding minute per organisation; past
    it, 429 and a cooldown in which every request is refused again (counted as a violation: a client that
    waits the cooldown out makes none); after the cooldown, at most limit/12 requests per cooldown-long
    interval ("25 in the following 5 seconds") until the minute has room again, else 429 and cooldown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: deque[float] = deque()
        self._cooldown_until = 0.0
        self._probation: tuple[float, int] | None = None  # (interval start, requests in it)
        self.limited = 0
        self.violations = 0

    def admit(self, limit: int, cooldown: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._cooldown_until:
                self.limited += 1
                self.violations += 1
                return False
            while self._accepted and self._accepted[0] <= now - 60.0:
                self._accepted.popleft()
            if self._probation is not None and len(self._accepted) < limit:
                self._probation = None
            if self._probation is None and len(self._accepted) < limit:
                self._accepted.append(now)
                return True
            started, used = self._probation or (now, limit)
            if now - started >= cooldown:
                started, used = now, 0
            if used >= -(-limit // 12):
                self._cooldown_until = now + cooldown
                self._probation = (self._cooldown_until, 0)
                self.limited += 1
                return False
            self._probation = (started, used + 1)
            self._accepted.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._accepted.clear()
            self._cooldown_until = 0.0
            self._probation = None
            self.limited = self.violations = 0

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {"RateLimited": self.limited, "CooldownViolations": self.violations}


def api_blueprint(sim: VerkadaSite) -> Blueprint:
    bp = Blueprint("verkada_api", __name__)
    engine = sim.engine

    @bp.before_request
    def limit_and_authenticate() -> None:
        streaming = request.path.startswith(STREAM_PREFIX)
        config = engine.config
        if (not streaming or config.rate_limit_streaming) and not sim.rate.admit(
            config.rate_limit_per_minute, config.rate_limit_cooldown_seconds
        ):
            raise VmsError(429, "Too Many Requests")
        if request.path == "/token" or streaming:
            return
        token = request.headers.get("x-verkada-auth", "")
        if not token:
            raise VmsError(401, "Missing x-verkada-auth header")
        failure = sim.tokens.check("api", token, engine.now_ms())
        if failure is not None:
            raise failure

    def camera_or_404(camera_id: str | None) -> Camera:
        camera = engine.cameras.get(camera_id) if camera_id else None
        if camera is None:
            raise VmsError(404, f"Camera {camera_id} not found")
        return camera

    def expiry_ms() -> int:
        return engine.now_ms() + engine.config.verkada_token_seconds * 1000

    @bp.post("/token", endpoint="token")
    def token() -> Response:
        key = request.headers.get("x-api-key", "")
        if not key or not secrets.compare_digest(key.encode(), sim.api_key.encode()):
            raise VmsError(401, "Invalid API key")
        return jsonify({"token": sim.tokens.mint("api", expiry_ms())})

    @bp.get("/cameras/v1/footage/token", endpoint="stream_token")
    def stream_token() -> Response:
        expires = expiry_ms()
        return jsonify(
            {
                "jwt": sim.tokens.mint("jwt", expires),
                "expiration": engine.config.verkada_token_seconds,
                "expiresAt": expires // 1000,
                "permission": ["live", "history"],
                "accessibleCameras": [camera.id for camera in engine.cameras.all()],
                "accessibleSites": [],
            }
        )

    @bp.get("/cameras/v1/devices", endpoint="cameras")
    def cameras() -> Response:
        size = _integer("page_size", DEFAULT_PAGE_SIZE)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise VmsError(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        offset = _page_offset(request.args.get("page_token"))
        everything = engine.cameras.all()
        page = everything[offset : offset + size]
        more = offset + size < len(everything)
        next_token = base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode() if more else None
        return jsonify({"cameras": [device_json(sim, c) for c in page], "next_page_token": next_token})

    @bp.get("/cameras/v1/footage/thumbnails", endpoint="thumbnail")
    def thumbnail() -> Response:
        camera = camera_or_404(request.args.get("camera_id"))
        if request.args.get("resolution", "low-res") not in ("low-res", "hi-res"):
            raise VmsError(400, "resolution must be low-res or hi-res")
        now = engine.now_ms()
        asked = _integer("timestamp", now // 1000) * 1000
        captured = sim.thumbnail_time(camera, asked)
        if captured is None:
            raise VmsError(404, "No thumbnail found for this camera near the requested time")
        size = camera.snapshot_bytes if camera.snapshot_bytes is not None else engine.config.snapshot_bytes
        image = snapshot_jpeg(camera.id, captured, size)
        return Response(image, mimetype="image/jpeg", headers={"X-Verkada-Timestamp": str(captured // 1000)})

    @bp.get(f"{STREAM_PREFIX}/<key>", endpoint="stream")
    def stream(key: str) -> Response:
        failure = sim.tokens.check("jwt", request.args.get("jwt", ""), engine.now_ms())
        if failure is not None:
            raise failure
        if request.args.get("org_id") != sim.org_id:
            raise VmsError(403, "The JWT does not grant access to this organization")
        camera = camera_or_404(request.args.get("camera_id"))
        if request.args.get("resolution", "low_res") not in ("low_res", "high_res"):
            raise VmsError(400, "resolution must be low_res or high_res")
        if key == "stream.m3u8":
            return playlist(camera)
        if key == "segment.ts":
            return segment(camera)
        raise VmsError(404, f"Unknown stream file {key}")

    def playlist(camera: Camera) -> Response:
        if request.args.get("type") != "stream":
            raise VmsError(400, "type must be stream")
        start, end = _integer("start_time", 0) * 1000, _integer("end_time", 0) * 1000
        if start == 0 and end == 0:
            raise VmsError(400, "Live streaming is not simulated; give start_time and end_time")
        if end <= start or end - start > HOUR_MS:
            raise VmsError(400, "end_time must be after start_time, and the window may span at most one hour")
        if not camera.online:
            raise VmsError(503, "The camera is offline: its footage is stored on the camera", reason="e503")
        step = engine.config.segment_seconds * 1000
        recorded = engine.recordings(camera, start - start % step, end + step - end % step)
        spans = [
            s for s in segment_spans(recorded, engine.config.segment_seconds) if s.end_ms > start and s.start_ms < end
        ]
        common = {"org_id": sim.org_id, "camera_id": camera.id, "resolution": request.args.get("resolution", "low_res")}
        return Response(_playlist_text(spans, common, engine.config.segment_seconds), mimetype="application/x-mpegURL")

    def segment(camera: Camera) -> Response:
        start, end = _integer("start_ms", -1), _integer("end_ms", -1)
        step = engine.config.segment_seconds * 1000
        recorded = engine.recordings(camera, start, end) if 0 <= start < end else []
        on_grid = start // step == (end - 1) // step
        if not camera.online or recorded != [(start, end)] or not on_grid:
            raise VmsError(404, "No such segment")
        data = ts_segment(camera.id, start, end, engine.config.bitrate_kbps)
        return stream_response(
            request,
            BytesStream(data, f"{camera.id}|{start}|{end}"),
            engine.download_behaviour(),
            content_type="video/mp2t",
        )

    return bp


def device_json(sim: VerkadaSite, camera: Camera) -> dict[str, Any]:
    return {
        "camera_id": camera.id,
        "name": camera.name,
        "site": "Main campus",
        "site_id": sim.site_id,
        "location": None,
        "location_lat": camera.latitude,
        "location_lon": camera.longitude,
        "location_angle": camera.azimuth,
        "model": "CD52",
        "serial": camera.serial,
        "mac": ":".join(camera.serial[i : i + 2].lower() for i in range(0, 12, 2)),
        "status": "Live" if camera.online else "Offline",
        "timezone": camera.time_zone,
        "date_added": camera.created_ms // 1000,
        "last_online": sim.engine.now_ms() // 1000 if camera.online else (camera.recording_end_ms or 0) // 1000,
        "device_retention": 30,
        "cloud_retention": None,
        "firmware": "Up to date",
    }


def _integer(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise VmsError(400, f"{name} must be an integer") from None


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("o:"):
            raise ValueError
        return int(text[2:])
    except ValueError:
        raise VmsError(400, "Invalid page_token") from None


def _pdt(ms: int) -> str:
    moment = from_ms(ms).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _playlist_text(spans: list, common: dict[str, str], segment_seconds: int) -> str:
    from urllib.parse import urlencode

    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{segment_seconds}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    previous_end = None
    for span in spans:
        if previous_end is not None and span.start_ms != previous_end:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(span.start_ms)}")
        lines.append(f"#EXTINF:{(span.end_ms - span.start_ms) / 1000:.3f},")
        lines.append("segment.ts?" + urlencode({**common, "start_ms": span.start_ms, "end_ms": span.end_ms}))
        previous_end = span.end_ms
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
