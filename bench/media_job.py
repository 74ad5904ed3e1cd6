"""Work items at work: one 3-camera × 2-hour media request, and a 1,000-camera thumbnail job's memory.

Through real local Functions host processes on the local stack, the EEN simulator at 450 kbit/s (about
405 MB per camera) serving each download connection at most 25 MB/s (a cloud VMS's CDN):

- media_job_seconds_serial:   one work item at a time (host.json batchSize 1, newBatchThreshold 0), one host
- media_job_seconds_parallel: the deployed host.json, one host
- media_job_seconds_2hosts:   the deployed host.json, two hosts
- longest_execution_seconds:  the longest single process_job run during the parallel job
- media_job_bytes:            the footage the job delivers (3 cameras × the window at 450 kbit/s)
- thumbnail_peak_rss_mib:     peak RSS of a host process through a 1,000-camera job with 200 KiB snapshots,
  beside host_idle_rss_mib, the same process's peak before the job
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack.agent_env import agent_settings
from devstack.funchost.logs import invocation_stats
from devstack.funchost.process import HostProcess
from devstack.stack import REPO_ROOT, LocalStack

FINAL = {"Completed", "PartiallyCompleted", "Failed", "Canceled"}
SERIAL = {
    "AzureFunctionsJobHost__extensions__queues__batchSize": "1",
    "AzureFunctionsJobHost__extensions__queues__newBatchThreshold": "0",
}
CDN_BYTES_PER_SECOND = 25_000_000


def _hosts(stack: LocalStack, count: int, label: str, workdir: Path, **overrides: str) -> list[HostProcess]:
    # Each run has a token table of its own, and the EEN grant rotates on first use: a fresh consent per run.
    grant = stack.een.control.new_grant()
    settings = agent_settings(stack, unique=True, POLL_SCHEDULE="*/1 * * * * *", EEN_REFRESH_TOKEN=grant, **overrides)
    return [
        HostProcess(
            REPO_ROOT,
            settings,
            instance_id=f"bench-{label}-{n}",
            host_id=f"bench-{label}",
            log_path=workdir / f"{label}-{n}.log",
            max_polling_interval=0.2,
        ).start()
        for n in range(count)
    ]


def _wait_final(stack: LocalStack, job_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.sim.job(job_id)
        if (job.get("CompletionState") or job["State"]) in FINAL:
            return job
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} not final after {timeout} s")


def media_job(stack: LocalStack, cameras: list[str], window: tuple[datetime, datetime], hosts: int, label: str,
              workdir: Path, **overrides: str) -> tuple[float, float]:  # fmt: skip
    """Seconds from posting the job to its completion, and the longest process_job run."""
    started_hosts = _hosts(stack, hosts, label, workdir, **overrides)
    try:
        start, end = (moment.isoformat() for moment in window)
        parameters = {"Cameras": [{"CameraId": c, "StartTimeUtc": start, "EndTimeUtc": end} for c in cameras]}
        began = time.perf_counter()
        job = stack.sim.create_job("mediarequest", parameters)
        detail = _wait_final(stack, job["Id"])
        seconds = time.perf_counter() - began
    finally:
        for host in started_hosts:
            host.stop()
    if detail.get("CompletionState") != "Completed":
        raise RuntimeError(f"the bench media job ended {detail.get('CompletionState') or detail['State']}")
    stats = invocation_stats([host.log_path for host in started_hosts if host.log_path], "process_job")
    return seconds, stats.longest_seconds


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def thumbnail_rss(stack: LocalStack, workdir: Path, cameras: int) -> tuple[float, float]:
    """(peak RSS of an idle started host, peak RSS after a `cameras`-camera thumbnail job) in MiB."""
    vms = stack.een.control
    vms.configure(SnapshotBytes=200 * 1024)
    ids = [vms.add_camera(Name=f"Thumb {n}")["Id"] for n in range(cameras)]
    (host,) = _hosts(stack, 1, "thumbs", workdir)
    try:
        time.sleep(2)  # the host's timers and listeners are up, the agent not built yet
        assert host.pid is not None
        idle = peak_rss_mib(host.pid)
        job = stack.sim.create_job("thumbnail", {"CameraIds": ids})
        detail = _wait_final(stack, job["Id"])
        loaded = peak_rss_mib(host.pid)
    finally:
        host.stop()
    if detail.get("CompletionState") != "Completed":
        raise RuntimeError(f"the thumbnail job ended {detail.get('CompletionState') or detail['State']}")
    return idle, loaded


def _media_run(hours: float, hosts: int, label: str, workdir: Path, **overrides: str) -> tuple[float, float]:
    """One configuration on a fresh local stack: Azurite keeps everything in memory, and a heap grown by an
    earlier run slows the next one down, so every configuration starts from the same state."""
    with LocalStack(state_dir=None) as stack:
        vms = stack.een.control
        vms.configure(BitrateKbps=450, DownloadBytesPerSecond=CDN_BYTES_PER_SECOND)
        end = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        recordings = [[(end - timedelta(hours=3)).isoformat(), end.isoformat()]]
        cameras = [vms.add_camera(Name=f"Bench {n}", Recordings=recordings)["Id"] for n in range(3)]
        return media_job(stack, cameras, (end - timedelta(hours=hours), end), hosts, label, workdir, **overrides)


def measure(quick: bool = False) -> dict[str, tuple[float, str]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-media-"))
    hours = 0.5 if quick else 2
    serial, _ = _media_run(hours, 1, "serial", workdir, **SERIAL)
    parallel, longest = _media_run(hours, 1, "parallel", workdir)
    two_hosts, _ = _media_run(hours, 2, "two", workdir)
    with LocalStack(state_dir=None) as stack:
        idle, loaded = thumbnail_rss(stack, workdir, 200 if quick else 1000)
    return {
        "media_job_seconds_serial": (serial, "s"),
        "media_job_seconds_parallel": (parallel, "s"),
        "media_job_seconds_2hosts": (two_hosts, "s"),
        "longest_execution_seconds": (longest, "s"),
        "media_job_bytes": (3 * hours * 3600 * 450_000 / 8, "bytes"),
        "host_idle_rss_mib": (idle, "MiB"),
        "thumbnail_peak_rss_mib": (loaded, "MiB"),
    }
