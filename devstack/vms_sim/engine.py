"""The engine shared by both vendor profiles: cameras, recordings, streams, jobs, clock, faults, log.

Each profile (EEN, Rhombus) owns one engine; the vendor modules only translate it to their wire format.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from devstack.registry_sim.clock import SimClock, utc_now
from devstack.registry_sim.requestlog import RequestLog

from .cameras import Camera, CameraStore, IdStyle, recorded_intervals, recording_spans
from .config import VmsConfig
from .errors import DropConnection
from .faults import DownloadBehaviour, VmsFaults
from .intervals import Interval, clip, close_seams, holes, normalise, subtract
from .jobs import Folder, Job, JobStore, OutputFile, new_id
from .redaction import redact_target
from .signing import UrlSigner
from .streams import ConcatStream, DigestCache, FootageStream, Stream, recording_stream
from .timeutil import floor_hour, to_ms


class RateLimiter:
    """At most `limit` calls per second per key, in real time (rate limits do not follow the sim clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def allow(self, key: str, limit: int) -> bool:
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - 1.0:
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class VmsEngine:
    def __init__(
        self, style: IdStyle, *, seed: str, camera_count: int, config: VmsConfig | None = None, seam_ms: int = 0
    ) -> None:
        self.style = style
        self.seam_ms = seam_ms  # recordings closer than this are one (a Rhombus seam is not missing footage)
        self.clock = SimClock()
        self.config = config or VmsConfig()
        self._initial = (seed, camera_count, self.config.copy())
        self.cameras = CameraStore(style, seed, camera_count, anchor_ms=floor_hour(to_ms(utc_now())))
        self.faults = VmsFaults()
        self.requests = RequestLog()
        self.signer = UrlSigner(self.clock)
        self.jobs = JobStore()
        self.digests = DigestCache()
        self.rate = RateLimiter()

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    # recordings and streams ------------------------------------------------------------------

    def recordings(self, camera: Camera, start_ms: int, end_ms: int) -> list[Interval]:
        recorded = recorded_intervals(camera, start_ms, end_ms, self.now_ms())
        return close_seams(recorded, self.seam_ms) if self.seam_ms else recorded

    def recording_spans(self, camera: Camera, start_ms: int, end_ms: int) -> list[Interval]:
        """Whole recordings overlapping [start, end), not cut at its edges."""
        return recording_spans(camera, start_ms, end_ms, self.now_ms())

    def presence(self, camera: Camera, start_ms: int, end_ms: int) -> tuple[list[Interval], list[Interval]]:
        """(in the cloud, on the camera only) parts of the recordings within [start, end)."""
        recorded = self.recordings(camera, start_ms, end_ms)
        local = normalise(camera.local_only)
        return subtract(recorded, local), [i for r in recorded for i in clip(local, *r)]

    def fetchable(self, camera: Camera, start_ms: int, end_ms: int) -> list[Interval]:
        """What a clip can hold: the recordings, less what is on an offline camera only."""
        cloud, local = self.presence(camera, start_ms, end_ms)
        return normalise(cloud + local) if camera.online else cloud

    def recording_stream(self, camera_id: str, start_ms: int, end_ms: int) -> FootageStream:
        return recording_stream(camera_id, start_ms, end_ms, self.bitrate_kbps(camera_id))

    def bitrate_kbps(self, camera_id: str) -> int:
        """The camera's own bitrate if it has one, else the configured one."""
        camera = self.cameras.get(camera_id)
        own = camera.bitrate_kbps if camera is not None else None
        return own or self.config.bitrate_kbps

    def recorded_parts_stream(self, camera: Camera, start_ms: int, end_ms: int) -> ConcatStream:
        """The recorded parts of a window back to back (what an EEN export of that window holds)."""
        parts = self.recordings(camera, start_ms, end_ms)
        return ConcatStream(tuple(self.recording_stream(camera.id, s, e) for s, e in parts))

    def spliced_stream(self, camera: Camera, start_ms: int, end_ms: int) -> ConcatStream:
        """A Rhombus clip of [start, end): footage where it can be fetched, "video not available"
        placeholder frames for the rest of the time."""
        real = self.fetchable(camera, start_ms, end_ms)
        parts = [(s, e, False) for s, e in real] + [(s, e, True) for s, e in holes(real, start_ms, end_ms)]
        bitrate = self.bitrate_kbps(camera.id)
        return ConcatStream(tuple(FootageStream(camera.id, s, e, bitrate, filler) for s, e, filler in sorted(parts)))

    def stream_info(self, stream: Stream) -> dict[str, Any]:
        return {"Size": stream.size, "Sha256": self.digests.sha256(stream)}

    def download_behaviour(self) -> DownloadBehaviour:
        """How the next media download is served: scripted faults and the configured rate cap."""
        return self.faults.take_download_behaviour(self.config.chunked_downloads, self.config.download_bytes_per_second)

    # exports and clips -----------------------------------------------------------------------

    def create_export(
        self, camera: Camera, start_ms: int, end_ms: int, details: dict[str, Any], *, folder: Folder, directory: str
    ) -> Job:
        """An EEN export of [start, end): one file per recorded part; gaps (and faults) are missing."""
        recorded = self.recordings(camera, start_ms, end_ms)
        if recorded and self.faults.take_job_fault("ExportPartial"):
            middle = start_ms + (end_ms - start_ms) // 2
            recorded = subtract(recorded, [(middle, end_ms)]) or recorded[:1]
        files = [
            OutputFile(new_id(), "", self.recording_stream(camera.id, s, e), (s, e), folder, directory)
            for s, e in recorded
        ]
        reason = "" if recorded else "no recordings in the period"
        return self._add_job(camera, start_ms, end_ms, details, recorded, files, None, None, reason)

    def create_clip(self, camera: Camera, start_ms: int, end_ms: int, details: dict[str, Any], job_id: str) -> Job:
        """A Rhombus clip of [start, end): always the whole time, placeholders where there is no footage."""
        recorded = self.fetchable(camera, start_ms, end_ms)
        content = self.spliced_stream(camera, start_ms, end_ms)
        return self._add_job(camera, start_ms, end_ms, details, recorded, [], content, job_id, "")

    def after_create(self) -> None:
        """Called by a create route once its export or clip exists, before it answers: applies the create
        fault, if any (hold the answer, or drop the connection without one)."""
        fault = self.faults.take_create_fault()
        if fault is None:
            return
        if fault.kind == "HoldAfterCreate":
            self.faults.hold(fault.seconds)
            return
        raise DropConnection()

    def _add_job(
        self,
        camera: Camera,
        start_ms: int,
        end_ms: int,
        details: dict[str, Any],
        recorded: list[Interval],
        files: list[OutputFile],
        content: Stream | None,
        job_id: str | None,
        reason: str,
    ) -> Job:
        fails = self.faults.take_job_fault("ExportFailure")
        seconds = self.config.export_duration_seconds if camera.export_seconds is None else camera.export_seconds
        job = Job(
            id=job_id or new_id(),
            camera_id=camera.id,
            start_ms=start_ms,
            end_ms=end_ms,
            created_ms=self.now_ms(),
            duration_ms=int(seconds * 1000),
            fails=fails or bool(reason),
            recorded=recorded,
            missing=holes(recorded, start_ms, end_ms),
            files=files,
            details=details,
            failure_reason="injected export failure" if fails else reason,
            content=content,
        )
        return self.jobs.add(job)

    def leftovers(self) -> list[dict[str, Any]]:
        return self.jobs.leftovers(self.now_ms())

    # request log -------------------------------------------------------------------------------

    def log_request(
        self,
        method: str,
        path: str,
        query: str,
        operation: str,
        status: int,
        seconds: float,
        job_id: str | None,
        range_header: str | None = None,
    ) -> None:
        # the Registry's RequestLog would redact every query value: the query is redacted here instead
        target = redact_target(f"{path}?{query}")
        self.requests.add(method, target, "", operation, status, seconds, job_id, range_header)

    def request_summary(self) -> dict[str, Any]:
        entries = self.requests.since(0)
        by_status = Counter(str(e["Status"]) for e in entries)
        return {
            "Total": len(entries),
            "Refreshes": sum(e["Operation"] == "token" and e["Status"] == 200 for e in entries),
            "Unauthorized": by_status["401"],
            "ByOperation": dict(Counter(e["Operation"] for e in entries)),
            "OkByOperation": dict(Counter(e["Operation"] for e in entries if e["Status"] == 200)),
            "ByStatus": dict(by_status),
        }

    # lifecycle ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the state at construction: seeded cameras, initial config, no jobs/faults/log, real time."""
        seed, count, config = self._initial
        self.cameras.reseed(seed, count)
        self.config.restore(config)
        self.jobs.reset()
        self.faults.reset()
        self.requests.reset()
        self.rate.reset()
        self.clock.reset()
        self.signer.expire_all()
