"""A realistic mix of jobs for the demo and end-to-end tests, each with the outcome it must reach.

Cameras are created in the VMS simulator with known recordings, so every job's expected state is
certain: full coverage → Completed (also when the recording reaches beyond the window: only the
window is delivered); a gap, or a camera without footage next to one with footage →
PartiallyCompleted; a camera the VMS does not know → Canceled.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

UNKNOWN_CAMERA = {
    "een": "ffff0000",
    "rhombus": "AAAAAAAAAAAAAAAAAAAAAA",
    "verkada": "00000000-0000-4000-8000-000000000000",
}
# Vendors that still give a thumbnail of an offline camera: EEN its latest recorded frame, Verkada its
# cloud thumbnail cache; Rhombus has no such fallback.
OFFLINE_THUMBNAIL = ("een", "verkada")
VMS_CHOICES: dict[str, tuple[str, dict[str, str]]] = {  # --vms: (simulator profile, agent settings)
    "een": ("een", {"EEN_VIDEO_ROUTE": "direct"}),
    "een-export": ("een", {"EEN_VIDEO_ROUTE": "export"}),
    "rhombus": ("rhombus", {}),
    "verkada": ("verkada", {}),
}


def configure_vms(control, profile: str, bitrate_kbps: int) -> None:
    """The simulator as the mix needs it: exports and clips finish in a few seconds, and EEN lists whole
    recordings (reaching beyond the windows asked for, which must never leak into a file)."""
    control.configure(BitrateKbps=bitrate_kbps, ExportDurationSeconds=3)
    if profile == "een":
        control.configure(UnclippedMediaIntervals=True)


@dataclass
class PlannedJob:
    job_type: str
    parameters: dict[str, Any]
    expected: str
    label: str
    job_id: str = ""


@dataclass
class DemoCameras:
    full: list[str]
    gappy: str
    empty: str
    offline: str
    segmented: str
    """Records in 5-minute files (as EEN lists them): pieces of its windows lie inside one recording, so
    EEN's direct route streams them from their mp4Url; only a window's ragged ends are exported."""
    recorded_from: datetime
    recorded_to: datetime


def create_cameras(control, *, full: int = 4, hours: int = 6) -> DemoCameras:
    """Cameras with recordings we chose: continuous ones, one with a 10-minute gap, one empty, one offline."""
    end = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    span = [[start.isoformat(), end.isoformat()]]
    middle = start + (end - start) / 2
    gap = [[start.isoformat(), middle.isoformat()], [(middle + timedelta(minutes=10)).isoformat(), end.isoformat()]]
    aligned = start.replace(minute=start.minute - start.minute % 5)
    files = [  # a second between files, as a camera's recording files have (under the 2 s gap tolerance)
        [
            (aligned + timedelta(minutes=5 * n)).isoformat(),
            (aligned + timedelta(minutes=5 * (n + 1), seconds=-1)).isoformat(),
        ]
        for n in range(int((end - aligned).total_seconds() // 300))
    ]
    return DemoCameras(
        full=[control.add_camera(Name=f"Entrance {i + 1}", Recordings=span)["Id"] for i in range(full)],
        gappy=control.add_camera(Name="Parking (gap)", Recordings=gap)["Id"],
        empty=control.add_camera(Name="Storage (no footage)", Recordings="none")["Id"],
        offline=control.add_camera(Name="Roof (offline)", Online=False, Recordings=span)["Id"],
        segmented=control.add_camera(Name="Lobby (5-minute recordings)", Recordings=files)["Id"],
        recorded_from=start,
        recorded_to=end,
    )


def plan(
    cameras: DemoCameras,
    vendor: str,
    *,
    media: int,
    thumbnails: int,
    discovery: int,
    max_window_minutes: int = 120,
    seed: int = 7,
) -> list[PlannedJob]:
    rng = random.Random(seed)

    def window(camera_id: str, minutes: int | None = None) -> dict[str, str]:
        length = timedelta(minutes=minutes or rng.randint(5, max_window_minutes))
        latest = cameras.recorded_to - length
        offset = rng.random() * max(0.0, (latest - cameras.recorded_from).total_seconds())
        start = (cameras.recorded_from + timedelta(seconds=offset)).replace(microsecond=0)
        return {"CameraId": camera_id, "StartTimeUtc": _z(start), "EndTimeUtc": _z(start + length)}

    jobs = [PlannedJob("discovery", {}, "Completed", "all cameras") for _ in range(discovery)]
    for i in range(thumbnails):
        ids = rng.sample(cameras.full, k=min(len(cameras.full), rng.randint(1, 3)))
        expected = "Completed"
        if i == 0:
            ids.append(cameras.offline)
            expected = "Completed" if vendor in OFFLINE_THUMBNAIL else "PartiallyCompleted"
        jobs.append(PlannedJob("thumbnail", {"CameraIds": ids}, expected, f"{len(ids)} camera(s)"))
    special = [
        ("PartiallyCompleted", "recording gap", lambda: [_gap_window(cameras)]),
        ("Completed", "recording beyond the window", lambda: [_inside_window(cameras)]),
        ("Completed", "5-minute recordings (EEN: streamed)", lambda: [_segmented_window(cameras)]),
        (
            "PartiallyCompleted",
            "one camera without footage",
            lambda: [window(rng.choice(cameras.full)), window(cameras.empty)],
        ),
        ("Canceled", "unknown camera", lambda: [window(UNKNOWN_CAMERA[vendor], 10)]),
    ]
    for i in range(media):
        if i < len(special):
            expected, label, make = special[i]
            jobs.append(PlannedJob("mediarequest", {"RequestId": f"demo-{i}", "Cameras": make()}, expected, label))
            continue
        ids = rng.sample(cameras.full, k=rng.randint(1, min(3, len(cameras.full))))
        parameters = {"RequestId": f"demo-{i}", "Cameras": [window(camera) for camera in ids]}
        jobs.append(PlannedJob("mediarequest", parameters, "Completed", f"{len(ids)} camera(s)"))
    rng.shuffle(jobs)
    return jobs


def _gap_window(cameras: DemoCameras) -> dict[str, str]:
    middle = cameras.recorded_from + (cameras.recorded_to - cameras.recorded_from) / 2
    start = middle - timedelta(minutes=15)
    return {"CameraId": cameras.gappy, "StartTimeUtc": _z(start), "EndTimeUtc": _z(start + timedelta(minutes=40))}


def _inside_window(cameras: DemoCameras) -> dict[str, str]:
    """20 minutes in the middle of a continuous recording, which begins before and ends after it."""
    start = cameras.recorded_from + timedelta(hours=1, seconds=7)
    return {"CameraId": cameras.full[0], "StartTimeUtc": _z(start), "EndTimeUtc": _z(start + timedelta(minutes=20))}


def _segmented_window(cameras: DemoCameras) -> dict[str, str]:
    """32 minutes of the segmented camera, starting 1 minute into one of its recordings: the first and
    last pieces reach into a recording the window only partly covers (exported); the rest are whole."""
    start = cameras.recorded_from.replace(minute=cameras.recorded_from.minute - cameras.recorded_from.minute % 5)
    start += timedelta(hours=2, minutes=1)
    return {"CameraId": cameras.segmented, "StartTimeUtc": _z(start), "EndTimeUtc": _z(start + timedelta(minutes=32))}


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
