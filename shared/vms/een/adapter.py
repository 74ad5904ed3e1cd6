"""Eagle Eye Networks API v3: cameras, snapshots and recorded video.

Video route A (default) lists recording intervals with `include=mp4Url` and streams each MP4; route B
creates an export job, polls it, downloads its files and deletes the job. Route B is used when
configured, or when route A offers nothing to download. The account's API host is discovered from
`clientSettings`, never hard-coded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from shared.http.retry import RetryingSender, TransportFailure, parse_retry_after
from shared.redact import redact_url, scrub
from shared.vms.base import (
    Camera,
    Capabilities,
    ClipStatus,
    Download,
    DownloadStream,
    Interval,
    Snapshot,
    VmsAdapter,
    clip_to_window,
    combine_pieces,
    split_window,
)
from shared.vms.download import ResumableDownload
from shared.vms.een.auth import EenTokens
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

VENDOR = "een"
API_PREFIX = "/api/v3.0"
PAGE_SIZE = 500
EXPORT_MAX = timedelta(hours=8)
JOB_STATES = {  # both vocabularies EEN documents
    "pending": "pending",
    "started": "running",
    "processing": "running",
    "success": "ready",
    "done": "ready",
    "failure": "failed",
    "failed": "failed",
    "revoked": "failed",
    "cancelled": "failed",
    "canceled": "failed",
}
URL_EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
# Statuses that are answers, not outages, on some routes: never retried there.
FINAL_STATUSES = {"live_image": frozenset({503})}


def een_timestamp(moment: datetime) -> str:
    """ISO-8601 with an explicit `+00:00` offset and milliseconds (some EEN endpoints reject `Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_een_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class EenAdapter(VmsAdapter):
    vendor = VENDOR

    def __init__(
        self,
        tokens: EenTokens,
        sender: RetryingSender,
        *,
        api_url: str = "https://api.eagleeyenetworks.com",
        video_route: str = "direct",
        page_size: int = PAGE_SIZE,
    ) -> None:
        if video_route not in ("direct", "export"):
            raise ValueError("video_route must be 'direct' or 'export'")
        self._tokens = tokens
        self._sender = sender
        self._api_url = api_url.rstrip("/")
        self._video_route = video_route
        self._page_size = page_size
        self._base_url: str | None = None
        self._base_lock = threading.Lock()
        self.capabilities = Capabilities(
            max_window=EXPORT_MAX,
            live_snapshot=True,
            snapshot_at_time=True,
            async_export=video_route == "export",
            reports_coverage=True,
            min_poll_interval=5.0,
        )

    # ---- HTTP plumbing ----------------------------------------------------------------------------

    def _account_base(self) -> str:
        """`https://{httpsBaseUrl.hostname}[:port]/api/v3.0`, discovered once per process."""
        with self._base_lock:
            if self._base_url is None:
                body = self._json(
                    self._request("GET", self._api_url + API_PREFIX + "/clientSettings", operation="clientSettings")
                )
                try:
                    host = body["httpsBaseUrl"]["hostname"]
                    port = int(body["httpsBaseUrl"].get("port") or 443)
                except (KeyError, TypeError, ValueError):
                    raise VmsVendorError("EEN clientSettings has no usable httpsBaseUrl", vendor=VENDOR) from None
                scheme = urlsplit(self._api_url).scheme or "https"
                default_port = 443 if scheme == "https" else 80
                netloc = host if port == default_port else f"{host}:{port}"
                self._base_url = f"{scheme}://{netloc}{API_PREFIX}"
                log.info("EEN: account API base discovered: %s", self._base_url)
            return self._base_url

    def _request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        camera_id: str | None = None,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One authenticated call: retries per policy, one token refresh on 401, errors mapped."""
        for attempt in (1, 2):
            token = self._tokens.access_token()
            try:
                response = self._sender.send(
                    method,
                    url,
                    operation=f"een_{operation}",
                    stream=stream,
                    final_statuses=FINAL_STATUSES.get(operation, frozenset()),
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})},
                    **kwargs,
                )
            except TransportFailure as exc:
                raise VmsTransient(f"EEN {operation}: {exc.detail}", vendor=VENDOR) from None
            if response.status_code == 401 and attempt == 1:
                response.close()
                log.info("EEN %s answered 401; refreshing the access token once", operation)
                self._tokens.invalidate(token)
                continue
            break
        if response.status_code >= 400:
            error = _error_for(response, operation, camera_id)
            response.close()
            raise error
        return response

    def _api(self, method: str, path: str, *, operation: str, camera_id: str | None = None, **kwargs: Any):
        return self._request(method, self._account_base() + path, operation=operation, camera_id=camera_id, **kwargs)

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise VmsVendorError("EEN returned a body that is not JSON", vendor=VENDOR) from None

    def _pages(self, path: str, params: dict[str, Any], *, operation: str, camera_id: str | None = None):
        """Every result of a cursor-paginated list; the last page has no or an empty nextPageToken."""
        params = {**params, "pageSize": self._page_size}
        seen_tokens: set[str] = set()
        while True:
            body = self._json(self._api("GET", path, operation=operation, camera_id=camera_id, params=params))
            yield from body.get("results") or []
            token = body.get("nextPageToken")
            if not token or token in seen_tokens:
                return
            seen_tokens.add(token)
            params["pageToken"] = token

    # ---- cameras ------------------------------------------------------------------------------------

    def list_cameras(self) -> Iterator[Camera]:
        for item in self._pages("/cameras", {"include": "devicePosition,status,timeZone"}, operation="cameras"):
            position = item.get("devicePosition") or {}
            status = (item.get("status") or {}).get("connectionStatus")
            yield Camera(
                id=str(item["id"]),
                name=item.get("name"),
                latitude=position.get("latitude"),
                longitude=position.get("longitude"),
                azimuth=position.get("azimuth"),
                timezone=(item.get("timeZone") or {}).get("zone"),
                online=None if status in (None, "unknown") else status == "online",
                raw=item,
            )

    # ---- snapshots ----------------------------------------------------------------------------------

    def get_snapshot(self, camera_id: str, at: datetime | None = None) -> Snapshot:
        """Live preview; or the full-resolution recorded frame at/before `at`, falling back to the preview
        stream when the main one is rate limited or has no frame (the preview is recorded more often)."""
        if at is None:
            try:
                return self._image(
                    "/media/liveImage.jpeg", {"deviceId": camera_id, "type": "preview"}, camera_id, "live_image"
                )
            except DeviceUnavailable:
                log.info("EEN: camera %s unavailable for a live image; using its latest recorded frame", camera_id)
                at = datetime.now(UTC)
        params = {"deviceId": camera_id, "timestamp__lte": een_timestamp(at)}
        try:
            return self._image("/media/recordedImage.jpeg", {**params, "type": "main"}, camera_id, "recorded_image")
        except (NoFootage, VmsRateLimited) as first:
            log.info(
                "EEN: no main-stream frame for %s (%s); trying the preview stream", camera_id, type(first).__name__
            )
            return self._image("/media/recordedImage.jpeg", {**params, "type": "preview"}, camera_id, "recorded_image")

    def _image(self, path: str, params: dict[str, str], camera_id: str, operation: str) -> Snapshot:
        response = self._api(
            "GET", path, operation=operation, camera_id=camera_id, params=params, headers={"Accept": "image/jpeg"}
        )
        stamp = response.headers.get("X-Een-Timestamp")
        try:
            captured = parse_een_time(stamp) if stamp else datetime.now(UTC)
        except ValueError:
            captured = datetime.now(UTC)
        return Snapshot(response.content, response.headers.get("Content-Type", "image/jpeg"), captured)

    # ---- recordings and video -----------------------------------------------------------------------

    def _media(self, camera_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        params = {
            "deviceId": camera_id,
            "type": "main",
            "mediaType": "video",
            "startTimestamp__gte": een_timestamp(start),
            "endTimestamp__lte": een_timestamp(end),
            "include": "mp4Url",
        }
        return list(self._pages("/media", params, operation="media", camera_id=camera_id))

    def find_recordings(self, camera_id: str, start: datetime, end: datetime) -> list[Interval]:
        intervals = [
            Interval(parse_een_time(m["startTimestamp"]), parse_een_time(m["endTimestamp"]))
            for m in self._media(camera_id, start, end)
        ]
        return clip_to_window(intervals, start, end)

    def start_clip(self, camera_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        ticket: dict[str, Any] = {
            "vendor": VENDOR,
            "camera_id": camera_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        if self._video_route == "direct":
            downloads = [
                self._media_download(camera_id, m) for m in self._media(camera_id, start, end) if m.get("mp4Url")
            ]
            if downloads:
                return {**ticket, "route": "direct", "downloads": [d.to_json() for d in downloads]}
            log.info("EEN: no direct MP4 for %s in the window; falling back to an export job", camera_id)
        exports = []
        for piece in split_window(start, end, EXPORT_MAX):
            body = {
                "deviceId": camera_id,
                "type": "video",
                "period": {"startTimestamp": een_timestamp(piece.start), "endTimestamp": een_timestamp(piece.end)},
                "info": {"name": f"clearance_{camera_id}_{piece.start:%Y%m%dT%H%M%SZ}", "directory": "/clearance"},
                "autoDelete": True,
            }
            created = self._json(self._api("POST", "/exports", operation="export", camera_id=camera_id, json=body))
            exports.append({"job_id": created["id"], "start": piece.start.isoformat(), "end": piece.end.isoformat()})
        return {**ticket, "route": "export", "exports": exports}

    def _media_download(self, camera_id: str, media: dict[str, Any]) -> Download:
        start, end = parse_een_time(media["startTimestamp"]), parse_een_time(media["endTimestamp"])
        return Download(
            url=media["mp4Url"],
            start=start,
            end=end,
            name=f"{camera_id}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.mp4",
            source={"kind": "media", "camera_id": camera_id, "start": media["startTimestamp"]},
        )

    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        if ticket["route"] == "direct":
            return ClipStatus("ready", 1.0, [Download.from_json(d) for d in ticket["downloads"]])
        states, progress, downloads, missing, details = [], [], [], [], []
        for export in ticket["exports"]:
            job = self._json(self._api("GET", f"/jobs/{export['job_id']}", operation="job"))
            state = JOB_STATES.get(str(job.get("state", "")).lower(), "running")
            states.append(state)
            progress.append(1.0 if state in ("ready", "failed") else float(job.get("progress") or 0))
            if state == "failed":
                details.append(_job_error(job))
                missing.append(Interval(datetime.fromisoformat(export["start"]), datetime.fromisoformat(export["end"])))
            if state == "ready":
                downloads += self._export_downloads(ticket, export, job)
                missing += _missing_intervals(job)
        return combine_pieces(states, progress, downloads, missing, details)

    def _export_downloads(self, ticket: dict[str, Any], export: dict[str, Any], job: dict[str, Any]) -> list[Download]:
        files = ((job.get("result") or {}).get("files")) or []
        start, end = datetime.fromisoformat(export["start"]), datetime.fromisoformat(export["end"])
        return [
            Download(
                url=urljoin(self._account_base() + "/", f["url"]),
                start=start,
                end=end,
                name=f.get("name") or f"{ticket['camera_id']}_{start:%Y%m%dT%H%M%SZ}.mp4",
                size=f.get("size"),
                source={"kind": "export", "job_id": export["job_id"], "name": f.get("name")},
            )
            for f in files
        ]

    def open_download(self, download: Download) -> DownloadStream:
        current = {"url": download.url}

        def open_at(offset: int) -> requests.Response:
            headers = {"Accept": "*/*"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            for attempt in (1, 2):
                try:
                    return self._request("GET", current["url"], operation="download", stream=True, headers=headers)
                except VmsError as exc:
                    if attempt == 2 or exc.status not in URL_EXPIRED_STATUSES:
                        raise
                    log.info(
                        "EEN: download URL for %s rejected (%s); asking for a fresh one", download.name, exc.status
                    )
                    current["url"] = self._fresh_url(download)
            raise AssertionError("unreachable")

        return ResumableDownload(open_at, vendor=VENDOR, what=f"EEN download {download.name}")

    def _fresh_url(self, download: Download) -> str:
        """Media URLs expire (EEN: cache them 2 h at most); ask again for the same recording."""
        source = download.source
        if source.get("kind") == "media":
            for media in self._media(source["camera_id"], download.start, download.end):
                if media.get("startTimestamp") == source["start"] and media.get("mp4Url"):
                    return media["mp4Url"]
        elif source.get("kind") == "export":
            job = self._json(self._api("GET", f"/jobs/{source['job_id']}", operation="job"))
            for f in ((job.get("result") or {}).get("files")) or []:
                if f.get("name") == source.get("name"):
                    return urljoin(self._account_base() + "/", f["url"])
        raise VmsTransient(f"EEN: no fresh URL for {download.name}", vendor=VENDOR)

    def cleanup(self, ticket: dict[str, Any]) -> None:
        for export in ticket.get("exports", []):
            try:
                self._api("DELETE", f"/jobs/{export['job_id']}", operation="delete_job").close()
            except VmsError as exc:
                if exc.status == 404:
                    continue  # already gone
                log.warning("EEN: could not delete export job %s: %s", export["job_id"], exc)

    def close(self) -> None:
        self._sender.session.close()


def _job_error(job: dict[str, Any]) -> str:
    error = job.get("error") or {}
    message = error.get("message") if isinstance(error, dict) else str(error)
    return scrub(f"export {job.get('id')} failed: {message or job.get('state')}")[:300]


def _missing_intervals(job: dict[str, Any]) -> list[Interval]:
    detailed = job.get("detailedState") or {}
    intervals = (detailed.get("intervals") or {}) if isinstance(detailed, dict) else {}
    missing = []
    for item in intervals.get("missingIntervals") or []:
        try:
            missing.append(Interval(parse_een_time(item["startTimestamp"]), parse_een_time(item["endTimestamp"])))
        except (KeyError, TypeError, ValueError):
            continue
    return missing


def _error_for(response: requests.Response, operation: str, camera_id: str | None) -> VmsError:
    """EEN error bodies are `{code, status, message, details[{reason}]}`."""
    status = response.status_code
    try:
        body = response.json()
        message = scrub(str(body.get("message") or body.get("status") or ""))[:200] if isinstance(body, dict) else ""
    except ValueError:
        message = ""
    where = f"EEN {operation}" + (f" for camera {camera_id}" if camera_id else "")
    text = f"{where}: HTTP {status}" + (f" {message}" if message else "") + f" ({redact_url(response.url or '')})"
    kwargs: dict[str, Any] = {"vendor": VENDOR, "status": status}
    if status == 404:
        if operation in ("recorded_image", "download"):
            return NoFootage(text, **kwargs)
        return CameraNotFound(text, **kwargs) if camera_id else VmsVendorError(text, **kwargs)
    if status == 503 and operation == "live_image":
        return DeviceUnavailable(text, **kwargs)
    if status == 429:
        return VmsRateLimited(text, retry_after=parse_retry_after(response.headers.get("Retry-After")), **kwargs)
    if status in (401, 403):
        return VmsAuthError(text, **kwargs)
    if status == 400:
        return VmsInvalidRequest(text, **kwargs)
    if status >= 500:
        return VmsTransient(text, **kwargs)
    return VmsVendorError(text, **kwargs)
