"""Failure paths of process_job that nothing else drives, each over real HTTP and Azurite with its fault
armed through a simulator's control API (nothing of the agent is patched): a cancel answered 409, a
release that fails, the lock lost while an item waits for a VMS export, progress answered 409, an upload
SAS refused by storage, storage busy on a Put Block, and a download that cannot be resumed."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from shared.agent.locks.renewer import renew_all
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import EncryptedBlobUploader, MiB, UploadSettings
from tests.integration.agent_helpers import drain, history, poll_once, quick_agent, recorded_camera, window


@pytest.fixture(autouse=True)
def default_durations(stack):
    """Other tests shorten locks and tokens (a reset keeps the configuration): these need the defaults."""
    stack.sim.configure(lock_duration_seconds=300, token_lifetime_seconds=3600, sas_ttl_seconds=3600)


@pytest.fixture
def make_agent(stack, vms):
    def make(**overrides):
        return quick_agent(stack, heartbeat_every=0.2, **overrides)

    return make


def files(stack, job_id: str) -> list[dict]:
    return stack.sim.job(job_id)["Files"]


def storage_steps(stack, job_id: str, file_id: str) -> list[tuple[str, int | None]]:
    record = next(f for f in files(stack, job_id) if f["FileId"] == file_id)
    return [(r["Step"], r["Status"]) for r in record["StorageRequests"]]


def media_job(stack, vms, minutes: int = 10) -> str:
    """A one-camera media request over a recording of `minutes` (10 minutes: one work item, one file)."""
    camera, start, end = recorded_camera(vms, minutes=minutes)
    return stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]


# ---- Registry answers under the lock ------------------------------------------------------------------


def test_a_cancel_answered_409_marks_the_job_lost_not_canceled(stack, vms, make_agent, caplog):
    agent = make_agent()
    job = stack.sim.create_job("thumbnail", {"CameraIds": ["ffff0000"]})["Id"]  # unknown camera: a cancel
    poll_once(agent)
    stack.sim.add_step_fault("cancel", "LoseLock", job_id=job)  # another agent took the job just before

    with caplog.at_level(logging.INFO):
        outcomes = drain(agent)

    assert outcomes == ["Lost"]
    assert history(stack, job, "cancel", 409) == 1 and history(stack, job, "cancel", 204) == 0
    assert stack.sim.job(job)["State"] != "Canceled"
    assert agent.services.records.get(job).state == "Lost"
    assert "Job ended: state=Lost" in caplog.text and "Job ended: state=Canceled" not in caplog.text
    assert agent.queue.peek_messages() == []  # nothing was planned


@pytest.mark.parametrize("where", ["planning", "item"])
def test_a_release_that_fails_is_logged_and_the_record_still_says_released(stack, vms, make_agent, caplog, where):
    """Our configuration is wrong, so the job is released; the Registry refuses the release (its lock then
    expires on its own). Planning fails on refused VMS credentials; an item on a refused upload host."""
    if where == "planning":
        agent = make_agent(EEN_CLIENT_SECRET="wrong-secret")
    else:
        agent = make_agent(UPLOAD_ALLOW_HTTP_LOOPBACK="false")
    camera = vms.add_camera(Name="cam")["Id"]
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)
    stack.sim.add_step_fault("release", "Status", job_id=job, status=400)

    with caplog.at_level(logging.INFO):
        outcomes = drain(agent)

    assert "Released" in outcomes
    assert history(stack, job, "release", 400) == 1 and history(stack, job, "cancel") == 0
    assert stack.sim.job(job)["State"] == "Locked"  # still ours until the lock expires
    record = agent.services.records.get(job)
    assert record.state == "Released"
    assert ("EEN_CLIENT" if where == "planning" else "UPLOAD_ALLOW_HTTP_LOOPBACK") in record.last_error
    assert f"Releasing job {job} failed too" in caplog.text and "Job ended: state=Released" in caplog.text
    assert "wrong-secret" not in caplog.text


def test_progress_answered_409_marks_the_job_lost_and_nothing_more_is_completed(stack, vms, make_agent, caplog):
    agent = make_agent()
    job = media_job(stack, vms, minutes=30)  # two 15-minute items: the first one reports progress
    poll_once(agent)
    stack.sim.add_step_fault("progress", "LoseLock", job_id=job)

    with caplog.at_level(logging.INFO):
        outcomes = drain(agent, workers=1)

    assert outcomes == ["Planned", "Delivered", "Stale"]  # the second item finds the lock gone
    assert history(stack, job, "progress", 409) == 1
    assert history(stack, job, "complete_media", 204) == 1 and history(stack, job, "complete") == 0
    assert agent.services.records.get(job).state == "Lost"
    assert "Job ended: state=Lost" in caplog.text


# ---- the VMS export ------------------------------------------------------------------------------------


def test_a_lock_lost_while_an_item_waits_for_its_export_stops_it_removes_the_export_and_completes_nothing(
    stack, vms, make_agent
):
    agent = make_agent(EEN_VIDEO_ROUTE="export")
    vms.configure(ExportDurationSeconds=3600)  # on the simulator clock: the export stays pending
    job = media_job(stack, vms)
    poll_once(agent)
    agent.services.wait_in_run = 120  # the run would wait for the export two minutes...
    waits: list[float] = []

    def wait_for_export(seconds: float) -> None:
        """The item's pause between two polls of its export: the lock is lost during the first one."""
        if not waits:
            stack.sim.lose_lock(job)  # another agent takes the job: our renewal is answered 409
            services = agent.services
            renew_all(services, margin=timedelta(hours=1))
            assert services.records.get(job).state == "Lost"
        waits.append(seconds)
        time.sleep(0.05)  # ...polling often, until its heartbeat reads the lost lock

    agent.services.sleep = wait_for_export
    outcomes = drain(agent, workers=1)

    # one item, run by the run that planned it: it was waiting for the export when the lock went
    assert outcomes == ["Lost"] and waits
    (export,) = vms.jobs()
    assert export["Deleted"] and vms.leftovers() == []  # its export was removed
    assert history(stack, job, "initialize_upload") == 0 and history(stack, job, "complete") == 0
    assert agent.services.records.get(job).state == "Lost"


# ---- storage and downloads -------------------------------------------------------------------------------


def test_an_upload_sas_refused_by_storage_gets_a_fresh_ticket_and_the_file_is_delivered_once(stack, vms, make_agent):
    agent = make_agent()
    camera = vms.add_camera(Name="cam")["Id"]
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)
    stack.sim.inject_expired_sas(count=1)  # the first ticket's SAS has already expired: storage answers 403

    outcomes = drain(agent)

    assert outcomes == ["Delivered"]  # one item, run by the run that planned it, with a second ticket
    assert history(stack, job, "initialize_upload", 200) == 2
    refused, fresh = files(stack, job)
    assert not refused["Completed"] and fresh["Completed"] and fresh["Verification"]["Ok"]
    assert stack.sim.job(job)["State"] == "Completed" and history(stack, job, "complete", 204) == 1


def test_storage_busy_past_the_retries_is_retried_later_and_the_busy_attempt_commits_nothing(stack, vms, make_agent):
    agent = make_agent(UPLOAD_BLOCK_MIB="1")
    settings = agent.settings
    agent.services.uploader = EncryptedBlobUploader(  # no retry inside the SDK: the failure reaches the agent now
        UploadTargetPolicy(settings.upload_allowed_hosts, settings.upload_allow_http_loopback),
        UploadSettings(block_size=MiB, concurrency=1, storage_retries=0),
    )
    job = media_job(stack, vms)  # 4.8 MB: five blocks
    poll_once(agent)
    stack.sim.add_step_fault("PutBlock", "Status", job_id=job, nth=2, status=503)  # ServerBusy

    outcomes = drain(agent)

    assert outcomes == ["RetryLater", "Delivered"]  # the planning run's attempt, then the item message's
    busy, delivered = files(stack, job)
    assert storage_steps(stack, job, busy["FileId"]) == [("PutBlock", 201), ("PutBlock", 503)]  # no commit
    assert not busy["Completed"] and delivered["Completed"] and delivered["Verification"]["Ok"]
    assert stack.sim.job(job)["State"] == "Completed" and history(stack, job, "complete_media", 204) == 1


def test_a_download_that_cannot_be_resumed_is_abandoned_uncommitted_and_fetched_again(stack, vms, make_agent):
    agent = make_agent()
    job = media_job(stack, vms)  # streamed from its mp4Url (EEN's direct route)
    poll_once(agent)
    vms.ignore_ranges(count=1)  # served as by a server without byte ranges...
    vms.drop_downloads(after_bytes=1_500_000, count=1)  # ...and dropped after the first MiB was handed on

    outcomes = drain(agent)

    assert outcomes == ["RetryLater", "Delivered"]  # the planning run's attempt, then the item message's
    downloads = [(r["Status"], r.get("Range")) for r in vms.requests() if r["Operation"] == "media_stream"]
    assert downloads == [(200, None), (200, None)]  # fetched again from the start, never resumed
    abandoned, delivered = files(stack, job)
    assert not abandoned["Completed"] and delivered["Completed"] and delivered["Verification"]["Ok"]
    assert stack.sim.job(job)["State"] == "Completed" and history(stack, job, "complete_media", 204) == 1
