"""Eagle Eye Networks API v3: cameras, snapshots and recorded video.

Video route A (`direct`, default) lists recording intervals with `include=mp4Url` and streams each
interval that lies wholly inside the window; an interval reaching beyond it is exported for exactly its
part inside. Route B (`export`) exports each covered interval. Every export is polled, its files
downloaded, then deleted for good with the job (`cleanup`). Each export's name carries the clip's tag,
and so do its files' names (EEN names them after the export), so `remove_tagged` finds them with EEN's
own lists: `GET /jobs` (export jobs of our user), `GET /files` (the export directory, `name__contains`)
and `GET /deletedFiles` (the recycle bin). Media URLs are signed, so they are never
kept in a ticket: `open_download` asks for a fresh one. The account's API host is discovered from
`clientSettings`, never hard-coded.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from shared.http.auth import TokenHeader
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
from shared.vms.een.auth import EenTokens
from shared.vms.een.exports import (
    EXPORT_DIRECTORY,
    archive_file_id,
    export_downloads,
    media_interval,
    parse_een_time,
)
from shared.vms.errors import (
    DeviceUnavailable,
    NoFootage,
    VendorFailures,
    VmsError,
    VmsRateLimited,
    VmsTransient,
    VmsVendorError,
    json_message,
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
FAILURES = VendorFailures(  # EEN error bodies are `{code, status, message, details[{reason}]}`
    VENDOR,
    "EEN",
    footage_operations=frozenset({"recorded_image", "download"}),
    offline_operations=frozenset({"live_image"}),
    detail=json_message("message", "status"),
)


def een_timestamp(moment: datetime) -> str:
    """ISO-8601 with an explicit `+00:00` offset and milliseconds (some EEN endpoints reject `Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class EenAdapter(VmsAdapter):
    vendor = VENDOR

    def __init__(
        self,
        tokens: EenTokens,
        transport: RetryingSender,
        *,
        api_url: str = "https://api.eagleeyenetworks.com",
        video_route: str = "direct",
        page_size: int = PAGE_SIZE,
    ) -> None:
        if video_route not in ("direct", "export"):
            raise ValueError("video_route must be 'direct' or 'export'")
        self._tokens = tokens
        self._sender = AuthenticatedSender(
            transport,
            FAILURES,
            TokenHeader(tokens),
            log_prefix="een_",
            default_headers={"Accept": "application/json"},
        )
        self._api_url = api_url.rstrip("/")
        self._video_route = video_route
        self._page_size = page_size
        self._base_url: str | None = None
        self._base_lock = threading.Lock()
        self._user_id: str | None = None
        self.capabilities = Capabilities(
            max_window=EXPORT_MAX,
            live_snapshot=True,
            snapshot_at_time=True,
            async_export=True,  # the direct route exports the parts of recordings that reach beyond a window
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
        return self._sender.send(
            method,
            url,
            Call(operation, camera_id),
            stream=stream,
            headers=headers,
            final_statuses=FINAL_STATUSES.get(operation, frozenset()),
            **kwargs,
        )

    def _api(
        self, method: str, path: str, *, operation: str, camera_id: str | None = None, **kwargs: Any
    ) -> requests.Response:
        return self._request(method, self._account_base() + path, operation=operation, camera_id=camera_id, **kwargs)

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise VmsVendorError("EEN returned a body that is not JSON", vendor=VENDOR) from None

    def _pages(
        self, path: str, params: dict[str, Any], *, operation: str, camera_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
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
        """Recording intervals overlapping [start, end]; EEN may list them whole, reaching beyond it."""
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
        return clip_to_window([media_interval(m) for m in self._media(camera_id, start, end)], start, end)

    def start_clip(self, camera_id: str, start: datetime, end: datetime, *, tag: str) -> dict[str, Any]:
        """Direct route: every recording interval that lies wholly inside the window is streamed from its
        mp4Url; one that reaches beyond it (EEN does not promise to clip the intervals it lists) is
        exported for exactly its part inside the window. Export route: one export per covered interval,
        so that each export yields one file whose times are known. Every export is named with `tag`."""
        check_tag(tag)
        ticket: dict[str, Any] = {
            "vendor": VENDOR,
            "route": self._video_route,
            "camera_id": camera_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "downloads": [],
            "exports": [],
            "tag": tag,
        }
        media = self._media(camera_id, start, end)
        to_export = []
        for item in media:
            interval = media_interval(item)
            inside = start <= interval.start and interval.end <= end
            if self._video_route == "direct" and inside and item.get("mp4Url"):
                ticket["downloads"].append(self._media_download(camera_id, interval).to_json())
            else:
                to_export.append(interval)
        try:
            for covered in clip_to_window(to_export, start, end):
                for piece in split_window(covered.start, covered.end, EXPORT_MAX):
                    ticket["exports"].append(self._create_export(camera_id, piece, tag))
        except Exception:
            self._abandon(ticket)  # the caller never sees this ticket: nothing it started may stay behind
            raise
        return ticket

    def _abandon(self, ticket: dict[str, Any]) -> None:
        try:
            self.cleanup(ticket)
        except VmsError as exc:
            log.warning("EEN: could not remove the exports of an abandoned clip: %s", exc)

    def _create_export(self, camera_id: str, piece: Interval, tag: str) -> dict[str, Any]:
        """An export of exactly `piece` into the archive's EXPORT_DIRECTORY, named with `tag` as a word of
        its own (at most 64 characters: 31 + 24 + 9). Not `autoDelete`: that would put the file in the
        read-only downloads folder for two weeks, where the API cannot delete it. Sent once: a retry after
        a lost answer would create a second export (the first is found by its tag)."""
        name = f"Clearance {piece.start:%Y-%m-%d %H-%M-%S}Z {tag} {uuid.uuid4().hex[:8]}"
        body = {
            "deviceId": camera_id,
            "type": "video",
            "period": {"startTimestamp": een_timestamp(piece.start), "endTimestamp": een_timestamp(piece.end)},
            "info": {"name": name, "directory": EXPORT_DIRECTORY},
            "autoDelete": False,
        }
        created = self._json(
            self._api("POST", "/exports", operation="export", camera_id=camera_id, json=body, idempotent=False)
        )
        return {"job_id": created["id"], "start": piece.start.isoformat(), "end": piece.end.isoformat()}

    def _media_download(self, camera_id: str, interval: Interval) -> Download:
        """A recording interval streamed from its mp4Url, which is signed: resolved when opened, never stored."""
        return Download(
            url="",
            start=interval.start,
            end=interval.end,
            name=f"{interval.start:%Y%m%dT%H%M%S.%fZ}_{interval.end:%Y%m%dT%H%M%S.%fZ}.mp4",
            source={"kind": "media", "camera_id": camera_id},
        )

    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        downloads = [Download.from_json(d) for d in ticket.get("downloads", [])]
        states, progress, details = [], [], []
        for export in ticket.get("exports", []):
            job = self._json(self._api("GET", f"/jobs/{export['job_id']}", operation="job"))
            state = JOB_STATES.get(str(job.get("state", "")).lower(), "running")
            progress.append(1.0 if state in ("ready", "failed") else float(job.get("progress") or 0))
            if state == "ready":
                found, problem = export_downloads(export, job, self._account_base())
                downloads += found
                details += [problem] if problem else []
            elif state == "failed":
                details.append(_job_error(job))
            states.append(state)
        detail = "; ".join(details)
        if any(state in ("pending", "running") for state in states):
            overall: ClipState = "pending" if all(state == "pending" for state in states) else "running"
            return ClipStatus(overall, sum(progress) / len(progress), detail=detail)
        overall = "failed" if states and not downloads and all(s == "failed" for s in states) else "ready"
        return ClipStatus(overall, 1.0, downloads, self._missing(ticket, downloads), detail)

    @staticmethod
    def _missing(ticket: dict[str, Any], downloads: list[Download]) -> list[Interval]:
        start, end = datetime.fromisoformat(ticket["start"]), datetime.fromisoformat(ticket["end"])
        return gaps(clip_to_window([Interval(d.start, d.end) for d in downloads], start, end), start, end)

    def resolve_url(self, download: Download) -> str:
        """A fresh URL for a download: EEN's media URLs are signed and expire (cache them 2 h at most)."""
        source = download.source
        if source.get("kind") == "media":
            for item in self._media(source["camera_id"], download.start, download.end):
                if item.get("mp4Url") and media_interval(item) == Interval(download.start, download.end):
                    return str(item["mp4Url"])
        elif source.get("kind") == "export":
            job = self._json(self._api("GET", f"/jobs/{source['job_id']}", operation="job"))
            files = (job.get("result") or {}).get("files") or []
            index = source.get("index", -1)
            if 0 <= index < len(files) and files[index].get("url"):
                return urljoin(self._account_base() + "/", str(files[index]["url"]))
        raise VmsTransient(f"EEN: no URL for {download.name} any more; fetch it again", vendor=VENDOR)

    def open_download(self, download: Download) -> DownloadStream:
        current = {"url": download.url or self.resolve_url(download)}

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
                    current["url"] = self.resolve_url(download)
            raise AssertionError("unreachable")

        return ResumableDownload(open_at, vendor=VENDOR, what=f"EEN download {download.name}")

    def cleanup(self, ticket: dict[str, Any]) -> None:
        """Deletes each export's files for good (archive, then recycle bin), then the export job: deleting
        only the job would leave the files in the customer's archive. Files go first, so a cleanup that
        stops half-way is finished by the next call; a job already gone had its files deleted before it."""
        failures = []
        for export in ticket.get("exports", []):
            try:
                self._delete_export(export["job_id"])
            except VmsError as exc:
                failures.append(f"export {export['job_id']}: {exc}")
        if failures:
            raise VmsTransient("EEN cleanup left artefacts behind: " + "; ".join(failures)[:500], vendor=VENDOR)

    def _delete_export(self, job_id: str) -> int:
        """Deletes one export (its files for good, then the job); returns how many of them were still there."""
        try:
            job = self._json(self._api("GET", f"/jobs/{job_id}", operation="job"))
        except VmsError as exc:
            if exc.status == 404:
                return 0
            raise
        removed = 0
        for item in (job.get("result") or {}).get("files") or []:
            file_id = archive_file_id(item) or self._find_file(item)
            if file_id is None:
                log.warning("EEN: export %s file %r not found in the archive; nothing to delete", job_id, item)
                continue
            removed += self._purge_file(file_id)
        return removed + self._delete_gone_ok(f"/jobs/{job_id}", "delete_job")

    def _purge_file(self, file_id: str) -> int:
        """Archive → recycle bin → gone; 1 when the file was still somewhere."""
        recycled = self._delete_gone_ok(f"/files/{file_id}", "delete_file")
        return max(recycled, self._delete_gone_ok(f"/deletedFiles/{file_id}", "purge_file"))

    def remove_tagged(self, tag: str) -> int:
        """Every export job named with `tag` (GET /jobs: export jobs of our user, every page) is deleted
        with its files; then any file of the export directory or the recycle bin whose name holds `tag`
        (an export whose job is gone) is deleted for good. Both routes list: the direct route also exports
        the parts of recordings that reach beyond a window. Everything is listed before anything is
        deleted, so deleting never shifts a page. Returns the jobs and files removed."""
        check_tag(tag)
        params = {"userId": self._current_user(), "namespace": "export", "sort": "+createTimestamp"}
        jobs = [
            str(job["id"])
            for job in self._pages("/jobs", params, operation="list_jobs")
            if job.get("id") and carries_tag(_export_name(job), tag)
        ]
        removed, failures = 0, []
        for job_id in jobs:
            try:
                removed += self._delete_export(job_id)
            except VmsError as exc:
                failures.append(f"export {job_id}: {exc}")
        in_archive = self._tagged_files("/files", {"directory": EXPORT_DIRECTORY, "name__contains": tag}, tag)
        in_bin = self._tagged_files("/deletedFiles", {"name__contains": tag}, tag)
        for file_id, recycled in [(f, False) for f in in_archive] + [(f, True) for f in in_bin]:
            try:
                removed += (
                    self._delete_gone_ok(f"/deletedFiles/{file_id}", "purge_file")
                    if recycled
                    else self._purge_file(file_id)
                )
            except VmsError as exc:
                failures.append(f"file {file_id}: {exc}")
        if failures:
            raise VmsTransient(f"EEN: tag {tag} left artefacts behind: " + "; ".join(failures)[:500], vendor=VENDOR)
        if removed:
            log.info("EEN: removed %d export job(s) and file(s) tagged %s", removed, tag)
        return removed

    def _tagged_files(self, path: str, params: dict[str, Any], tag: str) -> list[str]:
        operation = "list_files" if path == "/files" else "list_deleted_files"
        return [
            str(found["id"])
            for found in self._pages(path, params, operation=operation)
            if found.get("id") and carries_tag(found.get("name"), tag)
        ]

    def _current_user(self) -> str:
        """Our user's id (GET /users/self), which `GET /jobs` requires; asked once per process."""
        if self._user_id is None:
            body = self._json(self._api("GET", "/users/self", operation="current_user"))
            if not isinstance(body, dict) or not body.get("id"):
                raise VmsVendorError("EEN users/self has no id", vendor=VENDOR)
            self._user_id = str(body["id"])
        return self._user_id

    def _find_file(self, item: dict[str, Any]) -> str | None:
        """The archive id of an export file whose URL does not name it: looked up by directory and name."""
        params = {"directory": EXPORT_DIRECTORY, "name": item.get("name") or ""}
        for found in self._pages("/files", params, operation="list_files"):
            if found.get("name") == item.get("name") and found.get("id"):
                return str(found["id"])
        return None

    def _delete_gone_ok(self, path: str, operation: str) -> int:
        """1 when deleted, 0 when it was already gone."""
        try:
            self._api("DELETE", path, operation=operation).close()
        except VmsError as exc:
            if exc.status != 404:
                raise
            return 0
        return 1

    def close(self) -> None:
        self._sender.session.close()


def _export_name(job: dict[str, Any]) -> object:
    """The `info.name` an export job was created with (its `arguments` are the request's body)."""
    arguments = job.get("arguments")
    info = arguments.get("info") if isinstance(arguments, dict) else None
    return info.get("name") if isinstance(info, dict) else None


def _job_error(job: dict[str, Any]) -> str:
    error = job.get("error") or {}
    message = error.get("message") if isinstance(error, dict) else str(error)
    return scrub(f"export {job.get('id')} failed: {message or job.get('state')}")[:300]
