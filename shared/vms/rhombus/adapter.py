"""Rhombus: cameras, snapshots and recorded video through saved clips.

Every API call is a POST with a JSON body and two API-key headers; an HTTP 200 whose body says
`error: true` is a failure. Video: `spliceV3` creates a clip (at most 60 minutes, so longer windows are
split) → `getClipWithProgress` until COMPLETE → MP4 download from the media host → `deleteSavedClip`,
otherwise the clip stays in the customer's console. The API we use lists no recording intervals, so
`find_recordings` cannot see gaps (capabilities.reports_coverage is False); a clip over a window with
no footage at all fails, and that piece is reported missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from shared.http.retry import RetryingSender, TransportFailure, parse_retry_after
from shared.redact import scrub
from shared.vms.base import (
    Camera,
    Capabilities,
    ClipStatus,
    Download,
    DownloadStream,
    Interval,
    Snapshot,
    VmsAdapter,
    combine_pieces,
    split_window,
)
from shared.vms.download import ResumableDownload
from shared.vms.errors import (
    CameraNotFound,
    DeviceUnavailable,
    NoFootage,
    VmsAuthError,
    VmsError,
    VmsInvalidRequest,
    VmsRateLimited,
    VmsTransient,
    VmsVendorError,
)

log = logging.getLogger(__name__)

VENDOR = "rhombus"
REGIONS = {
    "us": ("https://api2.rhombussystems.com", "https://media.rhombussystems.com"),
    "eu": ("https://api2.eu.rhombussystems.com", "https://media.eu.rhombussystems.com"),
}
CLIP_MAX = timedelta(minutes=60)
CLIP_READY = frozenset({"COMPLETE", "COMPLETED", "DONE", "SUCCESS"})
CLIP_FAILED = frozenset({"FAILED", "FAILURE", "ERROR", "CANCELLED", "CANCELED"})


class RhombusAdapter(VmsAdapter):
    vendor = VENDOR

    def __init__(self, api_key: str, sender: RetryingSender, *, api_url: str, media_url: str) -> None:
        self._headers = {"x-auth-scheme": "api-token", "x-auth-apikey": api_key}
        self._sender = sender
        self._api_url = api_url.rstrip("/")
        self._media_url = media_url.rstrip("/")
        self._regions: dict[str, str] = {}
        self._regions_lock = threading.Lock()
        self.capabilities = Capabilities(
            max_window=CLIP_MAX,
            live_snapshot=True,
            snapshot_at_time=True,
            async_export=True,
            reports_coverage=False,
            min_poll_interval=2.0,
        )

    # ---- HTTP plumbing ----------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, operation: str, camera_id: str | None = None, **kwargs: Any):
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            response = self._sender.send(
                method,
                url,
                operation=f"rhombus_{operation}",
                headers=headers,
                final_statuses=frozenset({503}) if operation == "live_image" else frozenset(),
                **kwargs,
            )
        except TransportFailure as exc:
            raise VmsTransient(f"Rhombus {operation}: {exc.detail}", vendor=VENDOR) from None
        if response.status_code >= 400:
            error = _status_error(response, operation, camera_id)
            response.close()
            raise error
        return response

    def _post(self, path: str, body: dict[str, Any], *, operation: str, camera_id: str | None = None) -> dict:
        response = self._send("POST", self._api_url + path, operation=operation, camera_id=camera_id, json=body)
        try:
            document = response.json()
        except ValueError:
            raise VmsVendorError(f"Rhombus {operation}: the response is not JSON", vendor=VENDOR) from None
        if not isinstance(document, dict):
            raise VmsVendorError(f"Rhombus {operation}: the response is not a JSON object", vendor=VENDOR)
        if document.get("error"):
            raise _body_error(document, operation, camera_id)
        if document.get("warningMsg"):
            log.warning("Rhombus %s: %s", operation, scrub(str(document["warningMsg"]))[:200])
        return document

    # ---- cameras ------------------------------------------------------------------------------------

    def list_cameras(self) -> Iterator[Camera]:
        states = self._post("/api/camera/getMinimalCameraStateList", {}, operation="cameras").get("cameraStates")
        regions = {}
        for item in states or []:
            uuid = str(item["uuid"])
            regions[uuid] = item.get("mediaRegion") or ""
            status = item.get("connectionStatus")
            yield Camera(
                id=uuid,
                name=item.get("name"),
                latitude=item.get("latitude"),
                longitude=item.get("longitude"),
                online=None if status is None else str(status).upper() == "GREEN",
                raw=item,
            )
        with self._regions_lock:
            self._regions.update(regions)

    def _region(self, camera_id: str) -> str:
        with self._regions_lock:
            known = self._regions.get(camera_id)
        if known is None:
            for _ in self.list_cameras():
                pass
            with self._regions_lock:
                known = self._regions.get(camera_id)
        if known is None:
            raise CameraNotFound(f"Rhombus: camera {camera_id} is not in the account", vendor=VENDOR)
        return known

    # ---- snapshots ----------------------------------------------------------------------------------

    def get_snapshot(self, camera_id: str, at: datetime | None = None) -> Snapshot:
        if at is None:
            url = f"{self._media_url}/media/{camera_id}/{self._region(camera_id)}/snapshot.jpeg"
            response = self._send("GET", url, operation="live_image", camera_id=camera_id)
            return Snapshot(response.content, response.headers.get("Content-Type", "image/jpeg"), _date(response))
        body = {"cameraUuid": camera_id, "timestampMs": int(at.timestamp() * 1000)}
        frame_uri = self._post("/api/video/getExactFrameUri", body, operation="frame", camera_id=camera_id).get(
            "frameUri"
        )
        if not frame_uri:
            raise NoFootage(f"Rhombus: no frame for camera {camera_id} at {at.isoformat()}", vendor=VENDOR)
        response = self._send("GET", frame_uri, operation="recorded_image", camera_id=camera_id)
        return Snapshot(response.content, response.headers.get("Content-Type", "image/jpeg"), at)

    # ---- video --------------------------------------------------------------------------------------

    def find_recordings(self, camera_id: str, start: datetime, end: datetime) -> list[Interval]:
        """Coverage is not visible through this API: the whole window is assumed; gaps show as failed clips."""
        self._region(camera_id)  # unknown cameras fail here, as they would for EEN
        return [Interval(start, end)] if end > start else []

    def start_clip(self, camera_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        clips = []
        for piece in split_window(start, end, CLIP_MAX):
            body = {
                "deviceUuids": [f"{camera_id}.v0"],
                "startTimeMillis": int(piece.start.timestamp() * 1000),
                "durationSec": int(piece.duration.total_seconds()),
                "title": f"Clearance {camera_id} {piece.start:%Y-%m-%d %H:%M:%S}Z",
            }
            created = self._post("/api/video/spliceV3", body, operation="splice", camera_id=camera_id)
            if not created.get("clipUuid"):
                raise VmsVendorError("Rhombus spliceV3 returned no clipUuid", vendor=VENDOR)
            clips.append(
                {"clip_uuid": created["clipUuid"], "start": piece.start.isoformat(), "end": piece.end.isoformat()}
            )
        return {
            "vendor": VENDOR,
            "route": "clip",
            "camera_id": camera_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "clips": clips,
        }

    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        states, progress, downloads, missing, details = [], [], [], [], []
        for clip in ticket["clips"]:
            body = self._post("/api/event/getClipWithProgress", {"clipUuid": clip["clip_uuid"]}, operation="clip")
            info = body.get("clip") or {}
            status = str(info.get("status", "")).upper()
            start, end = datetime.fromisoformat(clip["start"]), datetime.fromisoformat(clip["end"])
            if status in CLIP_READY:
                states.append("ready")
                progress.append(1.0)
                region = (info.get("clipLocation") or {}).get("region") or ""
                downloads.append(
                    Download(
                        url=f"{self._media_url}/media/metadata/{region}/{clip['clip_uuid']}.mp4",
                        start=start,
                        end=end,
                        name=f"{ticket['camera_id']}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.mp4",
                        source={"kind": "clip", "clip_uuid": clip["clip_uuid"]},
                    )
                )
            elif status in CLIP_FAILED:
                states.append("failed")
                progress.append(1.0)
                missing.append(Interval(start, end))
                details.append(f"clip {clip['clip_uuid']} {status.lower()}")
            else:
                states.append("running")
                progress.append(min(1.0, float(info.get("percentComplete") or 0) / 100))
        return combine_pieces(states, progress, downloads, missing, details)

    def open_download(self, download: Download) -> DownloadStream:
        def open_at(offset: int) -> requests.Response:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            return self._send("GET", download.url, operation="download", stream=True, headers=headers)

        return ResumableDownload(open_at, vendor=VENDOR, what=f"Rhombus download {download.name}")

    def cleanup(self, ticket: dict[str, Any]) -> None:
        for clip in ticket.get("clips", []):
            try:
                self._post("/api/event/deleteSavedClip", {"clipUuid": clip["clip_uuid"]}, operation="delete_clip")
            except VmsError as exc:
                log.warning("Rhombus: could not delete saved clip %s: %s", clip["clip_uuid"], exc)

    def close(self) -> None:
        self._sender.session.close()


def _date(response: requests.Response) -> datetime:
    try:
        return parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


def _body_error(document: dict[str, Any], operation: str, camera_id: str | None) -> VmsError:
    """HTTP 200 with `error: true`: classify by the message where it is unambiguous."""
    message = scrub(str(document.get("errorMsg") or "error: true"))[:200]
    text = f"Rhombus {operation}" + (f" for camera {camera_id}" if camera_id else "") + f": {message}"
    lowered = message.lower()
    if "not found" in lowered and camera_id:
        return CameraNotFound(text, vendor=VENDOR)
    if any(word in lowered for word in ("no footage", "no video", "no recording", "nothing recorded")):
        return NoFootage(text, vendor=VENDOR)
    return VmsVendorError(text, vendor=VENDOR)


def _status_error(response: requests.Response, operation: str, camera_id: str | None) -> VmsError:
    status = response.status_code
    text = f"Rhombus {operation}" + (f" for camera {camera_id}" if camera_id else "") + f": HTTP {status}"
    kwargs: dict[str, Any] = {"vendor": VENDOR, "status": status}
    if status in (401, 403):
        return VmsAuthError(text + " (check RHOMBUS_API_KEY)", **kwargs)
    if status == 404:
        return (
            NoFootage(text, **kwargs) if operation in ("download", "recorded_image") else CameraNotFound(text, **kwargs)
        )
    if status == 503 and operation == "live_image":
        return DeviceUnavailable(text, **kwargs)
    if status == 429:
        return VmsRateLimited(text, retry_after=parse_retry_after(response.headers.get("Retry-After")), **kwargs)
    if status == 400:
        return VmsInvalidRequest(text, **kwargs)
    if status >= 500:
        return VmsTransient(text, **kwargs)
    return VmsVendorError(text, **kwargs)
