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


@cache
def _instruments() -> dict[str, Any]:
    meter = metrics.get_meter(METER_NAME)
    return {
        "jobs_ended": meter.create_counter("clearance.jobs.ended", unit="{job}", description="Jobs ended, by state"),
        "files": meter.create_counter(
            "clearance.files.delivered", unit="{file}", description="Files uploaded and completed"
        ),
        "bytes": meter.create_counter("clearance.bytes.delivered", unit="By", description="Bytes of files delivered"),
        "file_seconds": meter.create_histogram(
            "clearance.file.duration", unit="s", description="From InitializeUpload to Complete*, per file"
        ),
        "vms_rate": meter.create_histogram(
            "clearance.vms.throughput", unit="By/s", description="Bytes per second of a file streamed from the VMS"
        ),
        "http_throttled": meter.create_counter(
            "clearance.http.throttled", unit="{response}", description="HTTP 429 answers, by service"
        ),
        "http_server_errors": meter.create_counter(
            "clearance.http.server_errors", unit="{response}", description="HTTP 5xx answers, by service"
        ),
        "message_age": meter.create_histogram(
            "clearance.queue.message_age", unit="s", description="Age of a jobs-queue message when a run starts"
        ),
        "oldest_message_age": meter.create_histogram(
            "clearance.queue.oldest_message_age", unit="s", description="Age of the oldest jobs-queue message, per poll"
        ),
    }


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


def message_age(seconds: float, *, oldest: bool = False) -> None:
    _instruments()["oldest_message_age" if oldest else "message_age"].record(max(0.0, seconds))
