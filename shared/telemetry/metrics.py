"""The agent's metrics (names, units and attributes are documented in docs/telemetry.md).

Instruments come from the global meter provider through OpenTelemetry's proxy, so they may be created
before telemetry is set up (or when it never is: then recording costs a no-op call). Attributes are
low-cardinality only (state, job type, VMS kind, service); never a job id.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from opentelemetry import metrics

from shared.telemetry.context import current_dimensions

METER_NAME = "clearance.agent"


_SPECS: dict[str, tuple[str, str, str, str]] = {
    # key: (instrument, name, unit, description) — docs/telemetry.md lists the same
    "jobs_ended": ("counter", "clearance.jobs.ended", "{job}", "Jobs ended, by state"),
    "files": ("counter", "clearance.files.delivered", "{file}", "Files uploaded and completed"),
    "bytes": ("counter", "clearance.bytes.delivered", "By", "Bytes of files delivered"),
    "file_seconds": ("histogram", "clearance.file.duration", "s", "From InitializeUpload to Complete*, per file"),
    "vms_rate": ("histogram", "clearance.vms.throughput", "By/s", "Bytes per second of a media file from the VMS"),
    "http_throttled": ("counter", "clearance.http.throttled", "{response}", "HTTP 429 answers, by service"),
    "http_server_errors": ("counter", "clearance.http.server_errors", "{response}", "HTTP 5xx answers, by service"),
    "polls": ("counter", "clearance.polls", "{poll}", "poll_jobs runs (the heartbeat the absence alert watches)"),
    "message_age": ("histogram", "clearance.queue.message_age", "s", "Age of a jobs-queue message when its run starts"),
    "oldest_message_age": (
        "histogram",
        "clearance.queue.oldest_message_age",
        "s",
        "Age of the oldest visible jobs-queue message, per poll",
    ),
}
METRIC_NAMES = frozenset(name for _, name, _, _ in _SPECS.values())


@cache
def _instruments() -> dict[str, Any]:
    meter = metrics.get_meter(METER_NAME)
    made: dict[str, Any] = {}
    for key, (kind, name, unit, description) in _SPECS.items():
        create = meter.create_counter if kind == "counter" else meter.create_histogram
        made[key] = create(name, unit=unit, description=description)
    return made


def _job_attributes(**extra: str) -> dict[str, str]:
    dims = current_dimensions()
    attributes: dict[str, str] = {k: dims[k] for k in ("job_type", "vms") if k in dims}
    attributes.update({k: v for k, v in extra.items() if v})
    return attributes


def job_ended(state: str, job_type: str) -> None:
    _instruments()["jobs_ended"].add(1, _job_attributes(state=state, job_type=job_type))


def file_delivered(size: int, seconds: float, *, from_vms: bool) -> None:
    attributes = _job_attributes()
    instruments = _instruments()
    instruments["files"].add(1, attributes)
    instruments["bytes"].add(size, attributes)
    instruments["file_seconds"].record(seconds, attributes)
    if from_vms and seconds > 0:
        instruments["vms_rate"].record(size / seconds, attributes)


def http_answer(service: str, status: int) -> None:
    """Count the answers that say a service is struggling: 429 (throttled) and 5xx."""
    attributes = {"service": service}
    if service == "VMS" and (vms := current_dimensions().get("vms")):
        attributes["vms"] = vms
    if status == 429:
        _instruments()["http_throttled"].add(1, attributes)
    elif status >= 500:
        _instruments()["http_server_errors"].add(1, {**attributes, "status": str(status)})


def poll_ran() -> None:
    _instruments()["polls"].add(1)


def message_age(seconds: float, *, oldest: bool = False) -> None:
    _instruments()["oldest_message_age" if oldest else "message_age"].record(max(0.0, seconds))
