"""Verkada Command API: cameras, thumbnails, and recorded video as HLS remuxed into MP4.

Auth: the API key mints a 30-minute API token (`POST /token`, header `x-api-key`) sent as
`x-verkada-auth`; the streaming API takes a 30-minute JWT (`GET /cameras/v1/footage/token`) as its `jwt`
query parameter. Both are shared across instances (tokens.py) and minted again once on a 401.

Video: `GET /stream/cameras/v1/footage/stream/stream.m3u8` lists the segments of at most one hour of
footage. The playlist is the coverage: `find_recordings` returns its runs of back-to-back segments,
gaps included. A clip needs no server-side job: `start_clip` only splits the window into hours;
`poll_clip` measures each run's exact first and last sample (hls.py, media.py) and is ready at once;
`open_download` streams the run's segments remuxed into one fragmented MP4 holding exactly the reported
window. Nothing is created on Verkada's side, so `cleanup` has nothing to delete.

Limits: 300 requests a minute per organisation; past it Verkada answers 429 and wants a 5-second
cooldown, which every call here waits out (or the `Retry-After` it is given) a bounded number of times.
Footage lives on the camera unless cloud backup is on: when an offline camera's footage cannot be read,
the call fails with DeviceUnavailable (retry later), never with "nothing recorded".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from azure.data.tables import TableClient

from shared.http.auth import StaticHeaders, TokenHeader, TokenQuery
from shared.http.retry import RetryingSender
from shared.http.sender import AuthenticatedSender, Call, Cooldown
from shared.secrets.sealing import Sealer
from shared.vms.base import (
    Camera,
    Capabilities,
    ClipStatus,
    Download,
    DownloadStream,
    Interval,
    Snapshot,
    VmsAdapter,
    check_tag,
    clip_to_window,
    gaps,
    split_window,
)
from shared.vms.download import ResumableDownload
from shared.vms.errors import (
    CameraNotFound,
    DeviceUnavailable,
    VendorFailures,
    VmsError,
    VmsTransient,
    VmsVendorError,
    json_message,
)
from shared.vms.verkada import media
from shared.vms.verkada.hls import Run, Segment, from_us, parse_playlist, runs, to_us
from shared.vms.verkada.tokens import Credential, SharedCredential, SharedCredentialStore

log = logging.getLogger(__name__)

VENDOR = "verkada"
STREAM_MAX = timedelta(hours=1)
TOKEN_LIFETIME = timedelta(minutes=30)
PAGE_SIZE = 200  # Verkada's maximum page_size
COOLDOWN_SECONDS = 5.0  # what Verkada asks after a 429
RATE_LIMIT_WAITS = 6
CAMERA_CACHE = timedelta(minutes=5)
PLAYLIST_CACHE_SECONDS = 60.0
PLAYLIST_PATH = "/stream/cameras/v1/footage/stream/stream.m3u8"
SERVER_ERRORS = frozenset({500, 502, 503, 504})
FAILURES = VendorFailures(  # Verkada error bodies are `{"id": ..., "message": ..., "data": ...}`
    VENDOR,
    "Verkada",
    footage_operations=frozenset({"thumbnail", "playlist", "segment", "init"}),
    hints={
        401: " (check VERKADA_API_KEY and its expiry)",
        403: " (the API key lacks a permission: it needs Camera read and Streaming — live/historical)",
        429: " (Verkada allows 300 requests a minute per organisation)",
    },
    detail=json_message("message"),
    default_retry_after=COOLDOWN_SECONDS,
)


class VerkadaAdapter(VmsAdapter):
    vendor = VENDOR

    def __init__(
        self,
        api_key: str,
        org_id: str,
        transport: RetryingSender,
        *,
        api_url: str,
        token_table: TableClient,
        sealer: Sealer,
        resolution: str = "high_res",
        cooldown_seconds: float = COOLDOWN_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._org_id = org_id
        self._api_url = api_url.rstrip("/")
        self._resolution = resolution
        self.api_token = SharedCredential(
            "API token", SharedCredentialStore(token_table, "api-token", api_key, sealer), self._mint_api_token
        )
        self.stream_token = SharedCredential(
            "streaming token",
            SharedCredentialStore(token_table, "stream-jwt", api_key, sealer),
            self._mint_stream_token,
        )
        senders: dict[str, Any] = {
            "log_prefix": "verkada_",
            "default_headers": {"Accept": "application/json"},
            "cooldown": Cooldown(cooldown_seconds, RATE_LIMIT_WAITS, sleep),
        }
        self._minting = AuthenticatedSender(transport, FAILURES, StaticHeaders({"x-api-key": api_key}), **senders)
        self._sender = AuthenticatedSender(
            transport, FAILURES, TokenHeader(self.api_token, header="x-verkada-auth", scheme=""), **senders
        )
        self._streaming = AuthenticatedSender(
            transport, FAILURES, TokenQuery(self.stream_token, "jwt", renew_on=frozenset({401, 403})), **senders
        )
        self._cameras: dict[str, Camera] = {}
        self._cameras_at: datetime | None = None
        self._cameras_lock = threading.Lock()
        self._playlists: dict[tuple[str, int, int], tuple[float, list[Segment]]] = {}
        self._playlists_lock = threading.Lock()
        self.capabilities = Capabilities(
            max_window=STREAM_MAX,
            live_snapshot=True,
            snapshot_at_time=True,
            async_export=False,
            reports_coverage=True,
        )

    # ---- HTTP plumbing ----------------------------------------------------------------------------

    def _api(
        self, method: str, path: str, *, operation: str, camera_id: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """An API call with the shared API token (a 401 forgets it everywhere and mints once more); 429s wait
        out Verkada's cooldown a bounded number of times."""
        return self._sender.send(method, self._api_url + path, Call(operation, camera_id), **kwargs)

    @staticmethod
    def _json(response: requests.Response, operation: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise VmsVendorError(f"Verkada {operation}: the response is not JSON", vendor=VENDOR) from None
        if not isinstance(body, dict):
            raise VmsVendorError(f"Verkada {operation}: the response is not a JSON object", vendor=VENDOR)
        return body

    def _mint_api_token(self) -> Credential:
        issued = datetime.now(UTC)
        response = self._minting.send("POST", self._api_url + "/token", Call("token"), idempotent=False)
        token = self._json(response, "token").get("token")
        if not isinstance(token, str) or not token:
            raise VmsVendorError("Verkada token: the response has no token", vendor=VENDOR)
        return Credential(token, issued + TOKEN_LIFETIME)

    def _mint_stream_token(self) -> Credential:
        issued = datetime.now(UTC)
        body = self._json(self._api("GET", "/cameras/v1/footage/token", operation="stream_token"), "stream_token")
        jwt = body.get("jwt")
        if not isinstance(jwt, str) or not jwt:
            raise VmsVendorError("Verkada stream_token: the response has no jwt", vendor=VENDOR)
        expires = issued + TOKEN_LIFETIME
        if isinstance(body.get("expiresAt"), int | float):
            expires = min(expires, datetime.fromtimestamp(body["expiresAt"], UTC))
        elif isinstance(body.get("expiration"), int | float):
            expires = issued + timedelta(seconds=body["expiration"])
        return Credential(jwt, expires)

    # ---- cameras ------------------------------------------------------------------------------------

    def list_cameras(self) -> Iterator[Camera]:
        found: dict[str, Camera] = {}
        params: dict[str, Any] = {"page_size": PAGE_SIZE}
        seen: set[str] = set()
        while True:
            body = self._json(self._api("GET", "/cameras/v1/devices", operation="cameras", params=params), "cameras")
            for item in body.get("cameras") or []:
                camera = _camera(item)
                found[camera.id] = camera
                yield camera
            token = body.get("next_page_token")
            if not token or token in seen:
                break
            seen.add(str(token))
            params["page_token"] = token
        with self._cameras_lock:
            self._cameras, self._cameras_at = found, datetime.now(UTC)

    def _camera(self, camera_id: str) -> Camera:
        """The camera as last listed (listed again when unknown or stale); CameraNotFound if not in the org."""
        with self._cameras_lock:
            known, listed_at = self._cameras.get(camera_id), self._cameras_at
        fresh = listed_at is not None and datetime.now(UTC) - listed_at < CAMERA_CACHE
        if known is None or not fresh:
            for _ in self.list_cameras():
                pass
            with self._cameras_lock:
                known = self._cameras.get(camera_id)
        if known is None:
            raise CameraNotFound(f"Verkada: camera {camera_id} is not in the organisation", vendor=VENDOR)
        return known

    # ---- thumbnails ---------------------------------------------------------------------------------

    def get_snapshot(self, camera_id: str, at: datetime | None = None) -> Snapshot:
        """The cached thumbnail nearest the time (now when `at` is None), with its real capture time:
        Verkada's cache can be minutes away from the time asked for."""
        self._camera(camera_id)
        params: dict[str, Any] = {"camera_id": camera_id, "resolution": "hi-res"}
        if at is not None:
            params["timestamp"] = int(at.timestamp())
        response = self._api(
            "GET",
            "/cameras/v1/footage/thumbnails",
            operation="thumbnail",
            camera_id=camera_id,
            params=params,
            headers={"Accept": "image/jpeg"},
        )
        stamp = response.headers.get("X-Verkada-Timestamp", "")
        try:
            captured = datetime.fromtimestamp(float(stamp), UTC)
        except ValueError:
            captured = at or datetime.now(UTC)
            log.warning("Verkada: thumbnail of %s has no capture time; reporting the time asked for", camera_id)
        return Snapshot(response.content, response.headers.get("Content-Type", "image/jpeg"), captured)

    # ---- footage: playlists -------------------------------------------------------------------------

    def _playlist_url(self, camera_id: str, start_s: int, end_s: int) -> str:
        """The playlist's URL without credentials (what a ticket or a download may hold)."""
        query = {
            "org_id": self._org_id,
            "camera_id": camera_id,
            "start_time": start_s,
            "end_time": end_s,
            "resolution": self._resolution,
            "type": "stream",
        }
        return f"{self._api_url}{PLAYLIST_PATH}?{urlencode(query)}"

    def _stream_url(self, url: str, camera_id: str) -> str:
        """A streaming URL naming the organisation and camera (the JWT is added by the sender, fresh each time)."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("org_id", self._org_id)
        query.setdefault("camera_id", camera_id)
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _stream_get(
        self, url: str, *, operation: str, camera_id: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """A streaming-API GET with the shared JWT; a 401/403 forgets the JWT and mints once more. For an
        offline camera a 5xx is its answer (the footage is on the camera), not an outage to retry."""
        offline = self._camera(camera_id).online is False
        try:
            return self._streaming.send(
                "GET",
                self._stream_url(url, camera_id),
                Call(operation, camera_id),
                headers={"Accept": "*/*", **(headers or {})},
                final_statuses=SERVER_ERRORS if offline else frozenset(),
                **kwargs,
            )
        except VmsError as exc:
            if offline and exc.status in SERVER_ERRORS:
                raise self._offline(camera_id, f"HTTP {exc.status}") from None
            raise

    def _offline(self, camera_id: str, detail: str) -> DeviceUnavailable:
        return DeviceUnavailable(
            f"Verkada: camera {camera_id} is offline and its footage is stored on the camera ({detail}); "
            "retry when it is back online",
            vendor=VENDOR,
        )

    def _segments(self, camera_id: str, piece: Interval) -> tuple[int, int, list[Segment]]:
        """The playlist of one piece (at most an hour, whole seconds as Verkada takes them), cached briefly."""
        start_s = int(piece.start.timestamp())
        end_s = -int(-piece.end.timestamp() // 1)
        key = (camera_id, start_s, end_s)
        now = time.monotonic()
        with self._playlists_lock:
            cached = self._playlists.get(key)
            if cached and now - cached[0] < PLAYLIST_CACHE_SECONDS:
                return start_s, end_s, cached[1]
        url = self._playlist_url(camera_id, start_s, end_s)
        response = self._stream_get(url, operation="playlist", camera_id=camera_id)
        segments = parse_playlist(response.text, url, request_start_us=start_s * 1_000_000)
        if not segments and self._camera(camera_id).online is False:
            raise self._offline(camera_id, "the playlist is empty")
        with self._playlists_lock:
            self._playlists = {k: v for k, v in self._playlists.items() if now - v[0] < PLAYLIST_CACHE_SECONDS}
            self._playlists[key] = (now, segments)
        return start_s, end_s, segments

    def _runs(self, camera_id: str, piece: Interval) -> list[Run]:
        _, _, segments = self._segments(camera_id, piece)
        return runs(segments, to_us(piece.start), to_us(piece.end))

    def find_recordings(self, camera_id: str, start: datetime, end: datetime) -> list[Interval]:
        covered = []
        for piece in split_window(start, end, STREAM_MAX):
            covered += [Interval(from_us(r.start_us), from_us(r.end_us)) for r in self._runs(camera_id, piece)]
        return clip_to_window(covered, start, end)

    # ---- footage: clips -----------------------------------------------------------------------------

    def start_clip(self, camera_id: str, start: datetime, end: datetime, *, tag: str) -> dict[str, Any]:
        """No server-side job: the ticket names the window and its pieces of at most an hour (no credentials)."""
        check_tag(tag)
        self._camera(camera_id)
        pieces = [[p.start.isoformat(), p.end.isoformat()] for p in split_window(start, end, STREAM_MAX)]
        return {
            "vendor": VENDOR,
            "route": "hls",
            "camera_id": camera_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "pieces": pieces,
            "tag": tag,
        }

    def poll_clip(self, ticket: dict[str, Any]) -> ClipStatus:
        """Ready at once: one download per run of footage, timed to its exact first and last sample."""
        camera_id = ticket["camera_id"]
        downloads: list[Download] = []
        missing: list[Interval] = []
        for raw_start, raw_end in ticket["pieces"]:
            piece = Interval(datetime.fromisoformat(raw_start), datetime.fromisoformat(raw_end))
            start_s, end_s, segments = self._segments(camera_id, piece)
            covered = []
            for run in runs(segments, to_us(piece.start), to_us(piece.end)):
                window = (Fraction(max(run.start_us, to_us(piece.start)), 10**6), Fraction(to_us(piece.end), 10**6))
                measured = media.bounds(self._segment_fetcher(camera_id), run, *window)
                if measured is None:
                    continue
                start, end = _moment(measured.start), _moment(measured.end)
                covered.append(Interval(start, end))
                downloads.append(
                    Download(
                        url=self._playlist_url(camera_id, start_s, end_s),
                        start=start,
                        end=end,
                        name=f"{camera_id}_{_stamp(start)}_{_stamp(end)}.mp4",
                        source={
                            "kind": "hls",
                            "camera_id": camera_id,
                            "start_us": str(measured.start * 10**6),
                            "end_us": str(measured.end * 10**6),
                        },
                    )
                )
            missing += gaps(clip_to_window(covered, piece.start, piece.end), piece.start, piece.end)
        return ClipStatus("ready", 1.0, downloads, missing)

    def _segment_fetcher(self, camera_id: str) -> media.FetchSegment:
        init_cache: dict[tuple[str, str], bytes] = {}

        def fetch(segment: Segment) -> bytes:
            head = b""
            if segment.init_uri:
                key = (segment.init_uri, segment.init_range.header if segment.init_range else "")
                if key not in init_cache:
                    init_cache[key] = self._fetch_bytes(segment.init_uri, segment.init_range, camera_id, "init")
                head = init_cache[key]
            return head + self._fetch_bytes(segment.uri, segment.byte_range, camera_id, "segment")

        return fetch

    def _fetch_bytes(self, url: str, byte_range: Any, camera_id: str, operation: str) -> bytes:
        """A whole segment: a drop resumes with Range (or, for a byte-range segment, fetches it again)."""
        what = f"Verkada {operation} of camera {camera_id}"
        if byte_range is not None:
            for attempt in range(1, 4):
                response = self._stream_get(
                    url, operation=operation, camera_id=camera_id, headers={"Range": byte_range.header}, stream=True
                )
                try:
                    data = response.content
                except requests.exceptions.RequestException:
                    data = b""
                finally:
                    response.close()
                if response.status_code == 206 and len(data) == byte_range.length:
                    return data
                log.warning("%s: short byte range (%d/%d); again (%d/3)", what, len(data), byte_range.length, attempt)
            raise VmsTransient(f"{what}: the byte range never arrived whole", vendor=VENDOR)

        def open_at(offset: int) -> requests.Response:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            return self._stream_get(url, operation=operation, camera_id=camera_id, headers=headers, stream=True)

        stream = ResumableDownload(open_at, vendor=VENDOR, what=what, chunk_size=64 * 1024)
        try:
            data = b"".join(stream)
        finally:
            stream.close()
        if stream.content_length is not None and len(data) != stream.content_length:
            raise VmsTransient(f"{what}: {len(data)} of {stream.content_length} bytes", vendor=VENDOR)
        return data

    def open_download(self, download: Download) -> DownloadStream:
        return _Mp4Download(self, download)

    def _mp4_chunks(self, download: Download) -> Generator[bytes]:
        source = download.source
        camera_id = source["camera_id"]
        expected = media.Bounds(Fraction(source["start_us"]) / 10**6, Fraction(source["end_us"]) / 10**6)
        query = dict(parse_qsl(urlsplit(download.url).query))
        piece = Interval(
            datetime.fromtimestamp(int(query["start_time"]), UTC), datetime.fromtimestamp(int(query["end_time"]), UTC)
        )
        start_us, end_us = int(expected.start * 10**6), -int(-expected.end * 10**6 // 1)
        matching = [r for r in self._runs(camera_id, piece) if r.start_us <= start_us and r.end_us >= end_us]
        if not matching:
            raise VmsTransient(
                f"Verkada: the footage of {download.name} is no longer listed as one run; fetch the clip again",
                vendor=VENDOR,
            )
        yield from media.remux(
            self._segment_fetcher(camera_id), matching[0], expected, what=f"Verkada download {download.name}"
        )

    def cleanup(self, ticket: dict[str, Any]) -> None:
        """HLS creates nothing on Verkada's side: nothing to delete."""

    def remove_tagged(self, tag: str) -> int:
        """HLS creates nothing on Verkada's side: nothing to find, no call made."""
        check_tag(tag)
        return 0

    def close(self) -> None:
        self._sender.session.close()


class _Mp4Download(DownloadStream):
    """The remuxed MP4 of one download; its length is known only at the end."""

    def __init__(self, adapter: VerkadaAdapter, download: Download) -> None:
        self.content_length = None
        self._chunks = adapter._mp4_chunks(download)

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()


def _moment(seconds: Fraction) -> datetime:
    return from_us(round(seconds * 10**6))


def _camera(item: dict[str, Any]) -> Camera:
    status = str(item.get("status") or "").lower()
    online = True if status in ("live", "online") else False if status == "offline" else None
    return Camera(
        id=str(item["camera_id"]),
        name=item.get("name"),
        latitude=item.get("location_lat"),
        longitude=item.get("location_lon"),
        azimuth=item.get("location_angle"),
        timezone=item.get("timezone"),
        online=online,
        model=item.get("model"),
        manufacturer="Verkada",
        raw=item,
    )


def _stamp(moment: datetime) -> str:
    """20261124T052723Z, with milliseconds when the moment has them (20261124T052723.250Z)."""
    text = moment.strftime("%Y%m%dT%H%M%S")
    return text + (f".{moment.microsecond // 1000:03d}Z" if moment.microsecond else "Z")
