"""Telemetry of a real job on the local stack, collected by OpenTelemetry's in-memory exporters.

What an operator queries in Application Insights must be there: every log line of a job names the job
(also the lines from the item's heartbeat thread and from the renewal pool), the Registry, VMS and Blob
calls are dependency spans, one job is one trace across its messages, and the metrics count what ended
and what was delivered. No secret reaches a span or a log record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from shared.agent.locks.renewer import renew_all
from shared.agent.work.ledger import generation_of
from shared.telemetry.setup import InMemoryTelemetry, in_memory_telemetry
from tests.integration.agent_helpers import poll_once, quick_agent, recorded_camera, run_job, window

pytestmark = pytest.mark.integration


@pytest.fixture
def telemetry() -> Iterator[InMemoryTelemetry]:
    collected = in_memory_telemetry()
    collected.collect(True)
    # as in Azure, the agent's INFO lines are sent; the heartbeat's own line is DEBUG
    levels = {"shared": logging.INFO, "shared.agent.work.guard": logging.DEBUG}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield collected
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        collected.collect(False)


def _logs(telemetry: InMemoryTelemetry) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(data.log_record.body), dict(data.log_record.attributes or {}))
        for data in telemetry.logs.get_finished_logs()
    ]


def _points(telemetry: InMemoryTelemetry, name: str) -> list[Any]:
    data = telemetry.metrics.get_metrics_data()
    if data is None:  # nothing recorded yet
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _sum(telemetry: InMemoryTelemetry, name: str, **attributes: str) -> float:
    points = _points(telemetry, name)
    return sum(p.value for p in points if all(p.attributes.get(k) == v for k, v in attributes.items()))


def test_a_media_job_is_one_trace_whose_logs_spans_and_metrics_name_it(stack, telemetry):
    stack.een.control.reset()
    agent = quick_agent(stack, heartbeat_every=0.05)
    camera, start, end = recorded_camera(stack.een.control, minutes=20)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]
    files_before = _sum(telemetry, "clearance.files.delivered", job_type="mediarequest", vms="een")
    ended_before = _sum(telemetry, "clearance.jobs.ended", state="Completed", job_type="mediarequest")

    run_job(agent)

    record = agent.services.records.get(job)
    assert record is not None and record.state == "Completed"
    generation = generation_of(record.lock_token)
    logs = _logs(telemetry)
    of_job = [(body, attrs) for body, attrs in logs if attrs.get("job_id") == job]
    # every line of the job's runs carries its dimensions, whichever thread wrote it
    for body, attrs in of_job:
        assert attrs.get("job_type") == "mediarequest", body
        assert attrs.get("vms") == "een", body
    item_lines = [attrs for _, attrs in of_job if "item_id" in attrs]
    assert item_lines and all(attrs.get("generation") == generation for attrs in item_lines)
    heartbeats = [attrs for body, attrs in of_job if body.startswith("Heartbeat of item")]
    assert heartbeats, "no heartbeat line carried the job's dimensions"
    assert all(str(a["thread.name"]).startswith("heartbeat-") and a["item_id"] for a in heartbeats)
    ended = [attrs for body, attrs in of_job if body.startswith("Job ended: state=Completed")]
    assert len(ended) == 1 and ended[0]["generation"] == generation

    spans = [s for s in telemetry.spans.get_finished_spans() if (s.attributes or {}).get("job_id") == job]
    services = {(s.attributes or {}).get("clearance.service") for s in spans}
    assert {"Registry", "VMS", "Blob"} <= services
    dependencies = [s for s in spans if s.kind.name == "CLIENT"]
    # planning asks the VMS too (no item yet); every download and upload belongs to an item
    assert all((s.attributes or {}).get("item_id") for s in dependencies if s.name.startswith("Blob"))
    assert any((s.attributes or {}).get("item_id") for s in dependencies if s.name.startswith("VMS"))
    assert len({s.context.trace_id for s in spans}) == 1, "the job's messages did not carry its trace"
    names = {s.name for s in spans}
    assert {"poll_jobs take", "process_job plan", "process_job item"} <= names
    blob = next(s for s in spans if s.name == "Blob upload")
    assert "sig=REDACTED" in str((blob.attributes or {})["url.full"])

    assert _sum(telemetry, "clearance.jobs.ended", state="Completed", job_type="mediarequest") == ended_before + 1
    delivered = _sum(telemetry, "clearance.files.delivered", job_type="mediarequest", vms="een") - files_before
    assert delivered == 2  # a 20-minute window in 15-minute segments
    assert _sum(telemetry, "clearance.bytes.delivered", job_type="mediarequest", vms="een") > 0
    rates = [p for p in _points(telemetry, "clearance.vms.throughput") if p.attributes.get("vms") == "een"]
    assert rates and all(p.count >= 1 and p.min > 0 for p in rates)
    assert sum(p.count for p in _points(telemetry, "clearance.file.duration")) >= delivered

    secrets = (record.lock_token, stack.een.client_secret, "AccountKey=")
    for body, attrs in logs:
        for secret in secrets:
            assert secret not in body and all(secret not in str(v) for v in attrs.values())
    for span in telemetry.spans.get_finished_spans():
        for secret in secrets:
            assert all(secret not in str(v) for v in (span.attributes or {}).values())


def test_lines_from_the_renewal_pool_name_their_job_and_the_outcome_is_counted(stack, telemetry):
    agent = quick_agent(stack)
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)  # locked and queued, never run
    before = _sum(telemetry, "clearance.jobs.ended", state="Abandoned", job_type="thumbnail")

    agent.services.max_job_age = timedelta(0)  # every job in flight is past its age: released, Abandoned
    result = renew_all(agent.services, margin=timedelta(0))

    assert job in result.abandoned
    lines = [(body, attrs) for body, attrs in _logs(telemetry) if attrs.get("job_id") == job]
    from_pool = [(body, attrs) for body, attrs in lines if str(attrs["thread.name"]).startswith("renew")]
    assert any(body.startswith("Job ended: state=Abandoned") for body, _ in from_pool)
    record = agent.services.records.get(job)
    assert record is not None
    for _, attrs in from_pool:
        assert attrs["job_type"] == "thumbnail" and attrs["generation"] == generation_of(record.lock_token)
    release = [s for s in telemetry.spans.get_finished_spans() if s.name == "Registry release"]
    assert any((s.attributes or {}).get("job_id") == job for s in release)
    assert _sum(telemetry, "clearance.jobs.ended", state="Abandoned", job_type="thumbnail") == before + 1


def test_throttling_and_server_errors_are_counted_by_service(stack, telemetry):
    agent = quick_agent(stack)
    throttled = _sum(telemetry, "clearance.http.throttled", service="Registry")
    failing = _sum(telemetry, "clearance.http.server_errors", service="Registry")
    stack.sim.inject_fault("list_jobs", 429, retry_after=1)
    stack.sim.inject_fault("list_jobs", 502)
    poll_once(agent)  # both retried within the budget
    assert _sum(telemetry, "clearance.http.throttled", service="Registry") == throttled + 1
    assert _sum(telemetry, "clearance.http.server_errors", service="Registry") == failing + 1
