"""The deployed shape, end to end: the three functions run by real local Functions host processes
against the local stack. Jobs end in their planned state, exactly once, whatever happens to a host."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devstack.agent_env import agent_settings
from devstack.funchost.process import HostProcess
from devstack.scenario import create_cameras, plan
from devstack.stack import REPO_ROOT
from shared.agent.locks.records import LockRecords
from shared.agent.work.ledger import Ledger
from shared.settings import AgentSettings
from shared.storage import table_client

FINAL = {"Completed", "PartiallyCompleted", "Failed", "Canceled"}


@pytest.fixture
def settings(stack, vms):
    return agent_settings(
        stack, unique=True, POLL_SCHEDULE="*/1 * * * * *", RENEW_SCHEDULE="*/3 * * * * *", MAX_IN_FLIGHT_JOBS="10"
    )


@pytest.fixture
def hosts(settings, tmp_path):
    started: list[HostProcess] = []
    host_id = f"e2e-{uuid.uuid4().hex[:8]}"

    def start(count: int = 1) -> list[HostProcess]:
        new = []
        for _ in range(count):
            n = len(started) + 1
            host = HostProcess(
                REPO_ROOT,
                settings,
                instance_id=f"host-{n}",
                host_id=host_id,
                log_path=tmp_path / f"host-{n}.log",
                max_polling_interval=0.5,
                message_visibility=6,
                lease_duration=15,
                lease_retry_interval=1,
            )
            host.start()
            started.append(host)
            new.append(host)
        return new

    yield start
    for host in started:
        if host.running:
            host.stop()


def wait_final(stack, job_ids: list[str], timeout: float = 120) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = {j["Id"]: j for j in stack.sim.jobs()}
        if all(jobs[i]["State"] in FINAL for i in job_ids):
            return {i: stack.sim.job(i) for i in job_ids}
        time.sleep(0.5)
    raise AssertionError({i: jobs[i]["State"] for i in job_ids})


def completions(detail: dict) -> int:
    return sum(1 for h in detail["History"] if h["Operation"] == "complete" and h["Status"] == 204)


def test_the_planned_mix_reaches_its_planned_states_with_every_file_verified(stack, vms, hosts):
    jobs = plan(create_cameras(vms), "een", media=4, thumbnails=2, discovery=1, max_window_minutes=30)
    for job in jobs:
        job.job_id = stack.sim.create_job(job.job_type, job.parameters)["Id"]
    hosts(1)
    details = wait_final(stack, [j.job_id for j in jobs])
    for job in jobs:
        detail = details[job.job_id]
        assert detail["State"] == job.expected, (job.label, detail.get("CompletionMessage"), detail.get("CancelReason"))
        assert all(f["Verification"]["Ok"] for f in detail["Files"])
        assert completions(detail) == (0 if job.expected == "Canceled" else 1)


def test_two_hosts_on_30_jobs_complete_each_job_exactly_once(stack, vms, hosts):
    camera = vms.add_camera(Name="cam")["Id"]
    ids = [stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"] for _ in range(30)]
    hosts(2)
    details = wait_final(stack, ids, timeout=150)
    assert all(d["State"] == "Completed" and completions(d) == 1 and len(d["Files"]) == 1 for d in details.values())


def test_a_host_killed_mid_upload_redoes_only_the_items_it_was_running_and_the_job_completes_once(
    stack, vms, settings, hosts
):
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(minutes=45)  # three 15-minute work items
    camera = vms.add_camera(Name="slow", Recordings=[[start.isoformat(), end.isoformat()]])["Id"]
    window = {"CameraId": camera, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()}
    job = stack.sim.create_job("mediarequest", {"Cameras": [window]})["Id"]
    vms.trickle_downloads(bytes_per_second=500_000, count=1)  # one item's download takes ~15 s
    (victim,) = hosts(1)
    deadline = time.monotonic() + 60
    while len(stack.sim.job(job)["Files"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(stack.sim.job(job)["Files"]) == 3, "the uploads never started"
    victim.kill()  # SIGKILL mid-upload: no cleanup, the message is still invisible
    hosts(1)  # a new instance; it gets the message again once its visibility lapses
    detail = wait_final(stack, [job], timeout=120)[job]
    assert detail["State"] == "Completed" and completions(detail) == 1
    completed = [f for f in detail["Files"] if f["Completed"]]
    assert len(completed) == 3 and len({f["FileName"] for f in completed}) == 3
    assert all(f["Verification"]["Ok"] for f in completed)
    storage = AgentSettings.from_env(settings).storage
    table = table_client(storage, settings["LOCKS_TABLE_NAME"])
    record = LockRecords(table).get(job)  # the generation is readable without the (sealed) token
    ledger = Ledger(table)
    items = ledger.items(ledger.get_plan(job, record.generation))
    redone = [item for item in items if item.attempts > 1]
    assert len(redone) >= 1 and all(item.attempts == 2 for item in redone)  # only what the kill interrupted
    # a redo uploads afresh (one more file id) or, if its run died after recording the commit, completes that
    # same file id again; either way no piece is completed twice
    assert 3 <= len(detail["Files"]) <= 3 + len(redone)


def test_a_malformed_message_goes_to_the_poison_queue_and_no_lock_is_left_held(stack, vms, settings, hosts):
    queue = QueueClient.from_connection_string(stack.storage_connection_string, settings["JOBS_QUEUE_NAME"])
    queue.create_queue()
    queue.send_message("this is not base64 json {")
    camera = vms.add_camera(Name="cam")["Id"]
    jobs = [stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"] for _ in range(2)]  # locked alongside
    hosts(1)
    poison_name = settings["JOBS_QUEUE_NAME"] + "-poison"
    poison = QueueClient.from_connection_string(stack.storage_connection_string, poison_name)
    details = wait_final(stack, jobs)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _peek(poison):
        time.sleep(0.5)
    assert [m.content for m in _peek(poison)] == ["this is not base64 json {"]
    assert all(d["State"] == "Completed" and completions(d) == 1 for d in details.values())
    assert not [j["Id"] for j in stack.sim.jobs() if j["State"] == "Locked"]  # the Registry holds no lock of ours
    records = LockRecords(table_client(AgentSettings.from_env(settings).storage, settings["LOCKS_TABLE_NAME"]))
    assert sorted(r.job_id for r in records.all()) == sorted(jobs)  # both were locked and recorded...
    assert list(records.active()) == []  # ...and none is still held


def test_a_registry_answering_429_and_503_for_a_while_loses_nothing(stack, vms, hosts):
    camera = vms.add_camera(Name="cam")["Id"]
    ids = [stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"] for _ in range(6)]
    for operation, status in (("list_jobs", 503), ("lock", 429), ("complete_thumbnail", 503), ("complete", 429)):
        stack.sim.inject_fault(operation, status, count=3, retry_after=1)
    hosts(1)
    details = wait_final(stack, ids, timeout=120)
    assert all(d["State"] == "Completed" and completions(d) == 1 for d in details.values())


def _peek(queue: QueueClient) -> list:
    try:
        return queue.peek_messages()
    except ResourceNotFoundError:  # not created until the first poison message
        return []


def test_a_message_that_can_never_be_a_job_is_poisoned_on_its_first_delivery_and_logged_once(stack, settings, hosts):
    from azure.storage.queue import BinaryBase64EncodePolicy

    queue = QueueClient.from_connection_string(
        stack.storage_connection_string, settings["JOBS_QUEUE_NAME"], message_encode_policy=BinaryBase64EncodePolicy()
    )
    queue.create_queue()
    body = b'{"hello": "not a job", "secret": "BODY-TEXT-7"}'
    message_id = queue.send_message(body).id
    (host,) = hosts(1)
    poison = QueueClient.from_connection_string(
        stack.storage_connection_string, settings["JOBS_QUEUE_NAME"] + "-poison"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _peek(poison):
        time.sleep(0.3)
    (poisoned,) = _peek(poison)
    assert poisoned.dequeue_count in (0, 1)
    log = host.output()
    assert log.count(f"Message {message_id} can never be a job") == 1
    assert "BODY-TEXT-7" not in log and "Traceback" not in log
