"""A small client for a VMS simulator profile's /_sim control API, for tests and demos."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from devstack.registry_sim.control import ControlClient

from .timeutil import format_een, to_ms

TimeLike = datetime | str


def _iso(moment: TimeLike) -> str:
    return moment if isinstance(moment, str) else format_een(to_ms(moment))


def camera_path(camera_id: str) -> str:
    """/cameras/<id> with the id percent-encoded whole ("/" and "." too, so "../x" stays one segment)."""
    return "/cameras/" + quote(camera_id, safe="").replace(".", "%2E")


class VmsSimulatorControl(ControlClient):
    def __init__(self, base_url: str, *, timeout: float = 120.0, session: requests.Session | None = None) -> None:
        super().__init__(base_url, timeout=timeout, session=session)  # streams' SHA-256 may take a while

    # cameras and recordings ----------------------------------------------------------------

    def cameras(self) -> list[dict[str, Any]]:
        return self._call("GET", "/cameras")

    def seed_cameras(self, count: int, seed: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"Count": count}
        if seed is not None:
            body["Seed"] = seed
        return self._call("POST", "/cameras/seed", body)

    def add_camera(self, **fields: Any) -> dict[str, Any]:
        """Fields: Id (any string: a chosen id, e.g. "../x", "cam/1", unicode), Name, Online, TimeZone,
        Latitude, Longitude, Azimuth, GapMinutesPerHour, Recordings ("none" or [[start, end]…]), LocalOnly
        ([[start, end]…] kept on the camera only: Rhombus VideoLocal), SnapshotBytes (pad its snapshots).
        An added camera is online and recording unless told otherwise; it has a position only if given one."""
        return self._call("POST", "/cameras", fields)

    def update_camera(self, camera_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", camera_path(camera_id), fields)

    def set_online(self, camera_id: str, online: bool) -> dict[str, Any]:
        return self.update_camera(camera_id, Online=online)

    def set_camera_media(
        self, camera_id: str, *, bitrate_kbps: int | None = None, export_seconds: float | None = None
    ) -> dict[str, Any]:
        """The camera's own bitrate and export/clip duration (None: the configured ones)."""
        body = {"BitrateKbps": bitrate_kbps, "ExportDurationSeconds": export_seconds}
        return self._call("PUT", camera_path(camera_id) + "/media", body)

    def remove_camera(self, camera_id: str) -> None:
        self._call("DELETE", camera_path(camera_id))

    def recordings(self, camera_id: str, start: TimeLike | None = None, end: TimeLike | None = None) -> list[list[str]]:
        params = {name: _iso(v) for name, v in (("start", start), ("end", end)) if v is not None}
        return self._call("GET", camera_path(camera_id) + "/recordings", params=params)["Intervals"]

    def set_recordings(self, camera_id: str, intervals: list[tuple[TimeLike, TimeLike]] | None) -> None:
        """Explicit recording intervals; None restores the seeded pattern."""
        body = None if intervals is None else [[_iso(s), _iso(e)] for s, e in intervals]
        self._call("PUT", camera_path(camera_id) + "/recordings", {"Intervals": body})

    # streams -------------------------------------------------------------------------------

    def stream_info_for_url(self, url: str) -> dict[str, Any]:
        """{"Size", "Sha256"} of what a download URL serves (mp4Url, export file URL, clip URL)."""
        return self._call("POST", "/streams/info", {"Url": url})

    def stream_info(
        self, camera_id: str, start: TimeLike, end: TimeLike, *, recorded_only: bool = False
    ) -> dict[str, Any]:
        """{"Size", "Sha256"} of a camera's footage of exactly [start, end); with recorded_only, of the
        recorded parts of the window back to back (an EEN export's files of that window, concatenated)."""
        body = {"CameraId": camera_id, "Start": _iso(start), "End": _iso(end), "RecordedOnly": recorded_only}
        return self._call("POST", "/streams/info", body)

    def expire_media_urls(self) -> None:
        self._call("POST", "/media-urls/expire")

    # jobs ------------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """EEN export jobs / Rhombus clips, deleted ones included (see "Deleted")."""
        return self._call("GET", "/jobs")

    def saved_clips(self) -> list[dict[str, Any]]:
        """Rhombus clips not deleted yet (what stays in the customer's console)."""
        return [job for job in self.jobs() if not job["Deleted"]]

    def leftovers(self) -> list[dict[str, Any]]:
        """Everything a clip or export left in the customer's account: jobs or saved clips not deleted,
        export files not deleted for good (archive, recycle bin, read-only downloads folder). [] when clean."""
        return self._call("GET", "/leftovers")

    # faults ----------------------------------------------------------------------------------

    def inject_fault(
        self, operation: str, status: int, *, count: int = 1, retry_after: int | None = None, detail: str | None = None
    ) -> dict[str, Any]:
        """The next `count` calls of `operation` answer `status` in the vendor's error style."""
        body: dict[str, Any] = {"Kind": "Status", "Operation": operation, "Status": status, "Count": count}
        if retry_after is not None:
            body["RetryAfter"] = retry_after
        if detail is not None:
            body["Detail"] = detail
        return self._call("POST", "/faults", body)

    def trickle_downloads(self, bytes_per_second: int, count: int | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "Trickle", "BytesPerSecond": bytes_per_second, "Count": count})

    def drop_downloads(self, after_bytes: int, count: int | None = 1) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "Drop", "AfterBytes": after_bytes, "Count": count})

    def chunked_downloads(self, count: int | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "Chunked", "Count": count})

    def ignore_ranges(self, count: int | None = 1) -> dict[str, Any]:
        """The next `count` downloads are served as by a server without byte ranges: a Range header is
        ignored (200, the whole file) and no Accept-Ranges is sent."""
        return self._call("POST", "/faults", {"Kind": "IgnoreRange", "Count": count})

    def fail_exports(self, count: int = 1) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "ExportFailure", "Count": count})

    def partial_exports(self, count: int = 1) -> dict[str, Any]:
        return self._call("POST", "/faults", {"Kind": "ExportPartial", "Count": count})

    def drop_after_create(self, count: int = 1) -> dict[str, Any]:
        """The next `count` export/clip creations (EEN POST /exports, Rhombus spliceV3) create it, then
        close the connection without any answer."""
        return self._call("POST", "/faults", {"Kind": "DropAfterCreate", "Count": count})

    def hold_after_create(self, count: int = 1, seconds: int | None = None) -> dict[str, Any]:
        """The next `count` export/clip creations create it, then hold the answer until `release_held()`
        (or `seconds`, 600 at most): the window in which to kill the client. `held()` counts them."""
        body: dict[str, Any] = {"Kind": "HoldAfterCreate", "Count": count}
        if seconds is not None:
            body["Seconds"] = seconds
        return self._call("POST", "/faults", body)

    def held(self) -> int:
        """How many create answers are being held now."""
        return int(self._call("GET", "/faults")["Held"])

    def release_held(self) -> int:
        """Lets every held create answer go; returns how many there were."""
        return int(self._call("POST", "/faults/release")["Released"])

    # config and log (clock, faults, reset: see ControlClient) -----------------------------------

    def configure(self, **settings: Any) -> dict[str, Any]:
        """PascalCase settings, e.g. configure(BitrateKbps=4000, JobStates="notes", DownloadBytesPerSecond=25e6,
        UnclippedMediaIntervals=True, SnapshotBytes=200 * 1024); see devstack/vms_sim/config.py."""
        return self._call("POST", "/config", settings)

    def request_summary(self) -> dict[str, Any]:
        return self._call("GET", "/requests/summary")

    # Verkada only --------------------------------------------------------------------------

    def verkada_tokens(self) -> dict[str, int]:
        """{"ApiTokensMinted", "StreamTokensMinted", "RateLimited", "CooldownViolations"}."""
        return self._call("GET", "/verkada/tokens")

    def expire_verkada_tokens(self) -> None:
        """Every API token and streaming JWT issued so far expires now."""
        self._call("POST", "/verkada/expire-tokens")

    # EEN only ------------------------------------------------------------------------------

    def new_grant(self) -> str:
        """Revokes the current grant and returns a fresh seed refresh token (a new customer consent)."""
        return self._call("POST", "/een/grant")["RefreshToken"]

    def revoke_grant(self) -> None:
        self._call("POST", "/een/revoke")

    def expire_access_tokens(self) -> None:
        self._call("POST", "/een/expire-tokens")

    def tokens(self) -> dict[str, Any]:
        return self._call("GET", "/een/tokens")
