"""Rhombus: cameras, snapshots and recorded video through saved clips.

Every API call is a POST with a JSON body and two API-key headers; an HTTP 200 whose body says
`error: true` is a failure. Coverage: `getPresenceWindows` lists the footage in the cloud (`VideoCloud`)
and the footage kept only on the camera (`VideoLocal`, which can be fetched only while the camera is
online); seams under 2 s are merged and the last 120 s are unknown (still uploading). Rhombus splices
"video not available" placeholder frames over time without footage, so a clip is only ever asked for
covered time: one `spliceV3` per covered interval (at most 60 minutes) → `getClipWithProgress` until
COMPLETE → MP4 download from the media host → `deleteSavedClip`, otherwise the clip stays in the
customer's console. Each clip's title carries the clip request's tag, so `remove_tagged` finds the saved
clips of a request whose ticket was lost with `getClipsWithProgress` (the organisation's saved clips,
searched by title, paged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from shared.http.auth import StaticHeaders
from shared.http.retry import RetryingSender
from shared.http.sender import AuthenticatedSender, Call
from shared.redact import scrub
from shared.vms.base import (
    Camera,
    Capabilities,
    ClipState,
    ClipStatus,
    Download,
    DownloadStream,
    Interval,
    Snapshot,
    VmsAdapter,
    carries_tag,
    check_tag,
    clip_to_window,
    gaps,
    split_window,
)
from shared.vms.download import ResumableDownload
from shared.vms.errors import (
    CameraNotFound,
    NoFootage,
    VendorFailures,
    VmsError,
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
LIST_PAGE_SIZE = 1000  # getClipsWithProgress's maximum
LIST_HORIZON = timedelta(days=1)  # clips are listed up to now + this, whatever time the filter reads
CLIP_READY = frozenset({"COMPLETE", "COMPLETED", "DONE", "SUCCESS"})
CLIP_FAILED = frozenset({"FAILED", "FAILURE", "ERROR", "CANCELLED", "CANCELED", "OFFLINE"})
SEAM = timedelta(seconds=2)  # presence windows closer than this are one recording (Rhombus's own SDK does so)
UNSETTLED = timedelta(seconds=120)  # the most recent footage may still be uploading: not known yet
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAILURES = VendorFailures(
    VENDOR,
    "Rhombus",
    footage_operations=frozenset({"download", "recorded_image"}),
    offline_operations=frozenset({"live_image"}),
    hints={401: " (check RHOMBUS_API_KEY)", 403: " (check RHOMBUS_API_KEY)"},
    show_url=False,
    not_found_without_camera=CameraNotFound,
)


class RhombusAdapter(VmsAdapter):
    vendor = VENDOR

    def __init__(self, api_key: str, transport: RetryingSender, *, api_url: str, media_url: str) -> None:
        api_key_headers = StaticHeaders({"x-auth-scheme": "api-token", "x-auth-apikey": api_key})
        self._sender = AuthenticatedSender(transport, FAILURES, api_key_headers, log_prefix="rhombus_")
        self._api_url = api_url.rstrip("/")
        self._media_url = media_url.rstrip("/")
        self._regions: dict[str, str] = {}
        self._online: dict[str, bool | None] = {}
        self._regions_lock = threading.Lock()
        self.capabilities = Capabilities(
            max_window=CLIP_MAX,
            live_snapshot=True,
            snapshot_at_time=True,
            async_export=True,
            reports_coverage=True,
            min_poll_interval=2.0,
        )

    # ---- HTTP plumbing ----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        camera_id: str | None = None,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """One call with the API key headers; a 503 for a live image is an answer (offline), not an outage."""
        final = frozenset({503}) if operation == "live_image" else frozenset()
        call = Call(operation, camera_id)
        return self._sender.send(method, url, call, final_statuses=final, idempotent=idempotent, **kwargs)

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation: str,
        camera_id: str | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Every API call is a POST; all but the creating ones (spliceV3) are reads, safe to repeat."""
        url = self._api_url + path
        response = self._send("POST", url, operation=operation, camera_id=camera_id, idempotent=idempotent, json=body)
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
        regions, online = {}, {}
        for item in states or []:
            uuid = str(item["uuid"])
            regions[uuid] = item.get("mediaRegion") or ""
            status = item.get("connectionStatus")
            online[uuid] = None if status is None else str(status).upper() == "GREEN"
            yield Camera(
                id=uuid,
                name=item.get("name"),
                latitude=item.get("latitude"),
                longitude=item.get("longitude"),
                online=online[uuid],
                raw=item,
            )
        with self._regions_lock:
            self._regions.update(regions)
            self._online.update(online)

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

    def _is_online(self, camera_id: str) -> bool:
        """The camera's connection status now (one camera-state list call)."""
        for _ in self.list_cameras():
            pass
        with self._regions_lock:
            if camera_id not in self._regions:
                raise CameraNotFound(f"Rhombus: camera {camera_id} is not in the account", vendor=VENDOR)
            return self._online.get(camera_id) is True

    # ---- snapshots ----------------------------------------------------------------------------------

    def get_snapshot(self, camera_id: str, at: datetime | None = None) -> Snapshot:
        """A live image (its time is the response's Date, to the second), or the exact frame at `at`."""
        if at is None:
            url = f"{self._media_url}/media/{_path_segment(camera_id)}/{self._region(camera_id)}/snapshot.jpeg"
            response = self._send("GET", url, operation="live_image", camera_id=camera_id)
            return Snapshot(response.content, response.headers.get("Content-Type", "image/jpeg"), _date(response))
        millis = (at.astimezone(UTC) - EPOCH) // timedelta(milliseconds=1)
        body = {"cameraUuid": camera_id, "timestampMs": millis}
        frame_uri = self._post("/api/video/getExactFrameUri", body, operation="frame", camera_id=camera_id).get(
            "frameUri"
        )
        if not frame_uri:
            raise NoFootage(f"Rhombus: no frame for camera {camera_id} at {at.isoformat()}", vendor=VENDOR)
        response = self._send("GET", frame_uri, operation="recorded_image", camera_id=camera_id)
        captured = EPOCH + timedelta(milliseconds=millis)
        return Snapshot(response.content, response.headers.get("Content-Type", "image/jpeg"), captured)

    # ---- video --------------------------------------------------------------------------------------

    def find_recordings(self, camera_id: str, start: datetime, end: datetime) -> list[Interval]:
        """What a clip can hold: cloud footage, and footage kept on the camera only if the camera is online
        (an offline camera's local footage cannot be fetched: it is reported missing, to request again
        once the camera is back). Never the last UNSETTLED seconds, which may still be uploading."""
        self._region(camera_id)  # unknown cameras fail here, before anything is asked
        end = min(end, datetime.now(UTC) - UNSETTLED)
        if end <= start:
            return []
        first = (start.astimezone(UTC) - EPOCH) // timedelta(seconds=1)
        last = -(-(end.astimezone(UTC) - EPOCH) // timedelta(seconds=1))
        body = {"cameraUuid": camera_id, "startTimeSec": first, "durationSec": last - first}
        windows = self._post("/api/camera/getPresenceWindows", body, operation="presence", camera_id=camera_id)
        presence = windows.get("presenceWindows") or {}
        covered = _intervals(presence.get("VideoCloud"))
        local = _intervals(presence.get("VideoLocal"))
        if local and clip_to_window(local, start, end):
            if self._is_online(camera_id):
                covered += local
            else:
                log.warning(
                    "Rhombus: camera %s is offline; its footage kept on the camera cannot be fetched now", camera_id
                )
        return clip_to_window(_merge_seams(covered), start, end)

    def start_clip(self, camera_id: str, start: datetime, end: datetime, *, tag: str) -> dict[str, Any]:
        """One clip per covered interval (split at 60 minutes), never over time without footage: Rhombus
        would fill that with placeholder frames. A clip lasts whole seconds, so a fraction of a second at
        the end of an interval is left out (and reported missing) rather than overshot. Every clip's
        title ends with `tag`."""
        check_tag(tag)
        ticket: dict[str, Any] = {
            "vendor": VENDOR,
            "route": "clip",
            "camera_id": camera_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "clips": [],
            "tag": tag,
        }
        try:
            for covered in self.find_recordings(camera_id, start, end):
                for piece in split_window(covered.start, covered.end, CLIP_MAX):
                    clip = self._splice(camera_id, piece, tag)
                    if clip is not None:
                        ticket["clips"].append(clip)
        except Exception:
            self._abandon(ticket)  # the caller never sees this ticket: nothing it started may stay behind
            raise
        return ticket

    def _splice(self, camera_id: str, piece: Interval, tag: str) -> dict[str, str] | None:
        """Sent once: a retry after a lost answer would save a second clip (the first is found by its tag)."""
        seconds = int(piece.duration.total_seconds())
        if seconds < 1:
            return None
        body = {
            "deviceUuids": [f"{camera_id}.v0"],
            "startTimeMillis": (piece.start.astimezone(UTC) - EPOCH) // timedelta(milliseconds=1),
            "durationSec": seconds,
            "title": f"Clearance {piece.start:%Y-%m-%d %H:%M:%S}Z {tag}",
        }
        created = self._post("/api/video/spliceV3", body, operation="splice", camera_id=camera_id, idempotent=False)
        if not created.get("clipUuid"):
            raise VmsVendorError("Rhombus spliceV3 returned no clipUuid", vendor=VENDOR)
        end = piece.start + timedelta(seconds=seconds)
        return {"clip_uuid": created["clipUuid"], "start": piece.start.isoformat(), "end": end.isoformat()}

    def _abandon(self, ticket: dict[str, Any]) -> None:
        try:
            self.cleanup(ticket)
        except VmsError as exc:
            log.warning("Rhombus: could not delete the clips of an abandoned clip request: %s", exc)

    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        states, progress, downloads, details = [], [], [], []
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
                        url=f"{self._media_url}/media/metadata/{quote(region, safe='')}/{clip['clip_uuid']}.mp4",
                        start=start,
                        end=end,
                        name=f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.mp4",
                        size=info.get("byteCount") if isinstance(info.get("byteCount"), int) else None,
                        source={"kind": "clip", "clip_uuid": clip["clip_uuid"]},
                    )
                )
            elif status in CLIP_FAILED:
                states.append("failed")
                progress.append(1.0)
                details.append(f"clip {clip['clip_uuid']} {status.lower()}")
            else:
                states.append("pending" if status in ("", "INITIATING") else "running")
                progress.append(min(1.0, float(info.get("percentComplete") or 0) / 100))
        detail = "; ".join(details)
        if any(state in ("pending", "running") for state in states):
            overall: ClipState = "pending" if all(state == "pending" for state in states) else "running"
            return ClipStatus(overall, sum(progress) / len(progress), detail=detail)
        window_start, window_end = datetime.fromisoformat(ticket["start"]), datetime.fromisoformat(ticket["end"])
        covered = clip_to_window([Interval(d.start, d.end) for d in downloads], window_start, window_end)
        missing = gaps(covered, window_start, window_end)
        overall = "failed" if states and not downloads else "ready"
        return ClipStatus(overall, 1.0, downloads, missing, detail)

    def open_download(self, download: Download) -> DownloadStream:
        def open_at(offset: int) -> requests.Response:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            return self._send("GET", download.url, operation="download", stream=True, headers=headers)

        return ResumableDownload(open_at, vendor=VENDOR, what=f"Rhombus download {download.name}")

    def cleanup(self, ticket: dict[str, Any]) -> None:
        """Deletes every saved clip of the ticket; a clip already gone is fine."""
        self._delete_clips([clip["clip_uuid"] for clip in ticket.get("clips", [])], "cleanup")

    def _delete_clips(self, clip_uuids: list[str], what: str) -> int:
        """Deletes each saved clip; returns how many were still there. VmsTransient naming those left."""
        removed, failures = 0, []
        for clip_uuid in clip_uuids:
            try:
                self._post("/api/event/deleteSavedClip", {"savedClipUuid": clip_uuid}, operation="delete_clip")
                removed += 1
            except VmsError as exc:
                if "not found" in str(exc).lower():
                    continue
                failures.append(f"clip {clip_uuid}: {exc}")
        if failures:
            raise VmsTransient(f"Rhombus {what} left saved clips behind: " + "; ".join(failures)[:500], vendor=VENDOR)
        return removed

    def remove_tagged(self, tag: str) -> int:
        """Deletes every saved clip whose title holds `tag`: `getClipsWithProgress` searched by the tag
        (`searchFilter` searches clip titles), every page, over all time up to a day ahead (the API wants
        a time range; either time it may read, creation or footage, is inside it), each title checked
        here too. Everything is listed before anything is deleted, so deleting never shifts a page."""
        check_tag(tag)
        before = (datetime.now(UTC) + LIST_HORIZON - EPOCH) // timedelta(milliseconds=1)
        body: dict[str, Any] = {
            "searchFilter": tag,
            "timestampMsAfter": 0,
            "timestampMsBefore": before,
            "pageSize": LIST_PAGE_SIZE,
        }
        found: list[str] = []
        seen_tokens: set[str] = set()
        while True:
            page = self._post("/api/event/getClipsWithProgress", body, operation="list_clips")
            found += [
                str(clip["uuid"])
                for clip in page.get("savedClips") or []
                if isinstance(clip, dict) and clip.get("uuid") and carries_tag(clip.get("title"), tag)
            ]
            token = page.get("pageToken")
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
            body["pageToken"] = token
        removed = self._delete_clips(list(dict.fromkeys(found)), f"removal of tag {tag}")
        if removed:
            log.info("Rhombus: removed %d saved clip(s) tagged %s", removed, tag)
        return removed

    def close(self) -> None:
        self._sender.session.close()


def _path_segment(value: str) -> str:
    """A camera id as one URL path segment, whatever it holds ("/", "..", control characters, unicode)."""
    return quote(value, safe="").replace(".", "%2E")


def _intervals(windows: Any) -> list[Interval]:
    """TimeWindowSeconds → intervals; malformed entries are skipped."""
    found = []
    for window in windows or []:
        try:
            start = EPOCH + timedelta(seconds=int(window["startSeconds"]))
            found.append(Interval(start, start + timedelta(seconds=int(window["durationSeconds"]))))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _merge_seams(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for interval in sorted(intervals):
        if merged and interval.start - merged[-1].end < SEAM:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, interval.end))
        else:
            merged.append(interval)
    return merged


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
