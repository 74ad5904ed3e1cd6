"""Every job reaches a final state in bounded time: the liveness guarantees of docs/work-items.md, each
driven on the local stack (Azurite, the Registry and VMS simulators) with the simulators' controls."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from shared.agent.locks.records import LockRecord, LockRecords
from shared.agent.locks.renewer import renew_all
from shared.agent.states import FileKind, FileState, ItemKind, ItemState
from shared.agent.work.ending import lose_job, release_job
from shared.agent.work.ledger import FileEntry, Ledger, OfferedJob, Plan, WorkItem, new_plan_id
from shared.agent.work.messages import decode_message
from shared.agent.work.processor import process_message
from shared.agent.work.worker import run_item
from tests.integration.agent_helpers import (
    drain,
    end_pause,
    history,
    plan_only,
    poll_once,
    quick_agent,
    recorded_camera,
    window,
)

GiB = 2**30


@pytest.fixture
def agent(stack, vms):
    return quick_agent(stack)


def job_lines(caplog, job_id: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Job ended") and job_id in r.getMessage()
    ]


def test_byte_counters_past_4_gib_are_stored_and_counted(agent):
    """A plan delivering more than 2^31 bytes, and one file over 4 GiB: Table Storage takes them (64-bit)."""
    ledger = agent.services.ledger
    agent.services.records.ensure_table()
    plan_id = new_plan_id()
    big = FileEntry("cam_big.mp4", FileKind.MEDIA, {}, FileState.DELIVERED, "file-1", 5 * GiB, "0" * 64)
    item = WorkItem("job-big", "g1", f"{plan_id}-m1", ItemKind.MEDIA_SEGMENT, camera_id="cam", size_hint=5 * GiB)
    plan = Plan("job-big", "g1", "mediarequest", plan_id=plan_id, items_total=1, items_remaining=1,
                bytes_delivered=3 * GiB)  # fmt: skip
    stored, created = ledger.create_plan(plan, [item], [])
    assert created
    item = ledger.save_item(
        replace(ledger.items(stored)[0], state=ItemState.DELIVERED, files=(big,), bytes_in_flight=5 * GiB)
    )
    counted = replace(stored, items_remaining=0, bytes_delivered=stored.bytes_delivered + item.bytes_delivered)
    ledger.finish_item(item, counted)

    after = ledger.get_plan("job-big", "g1")
    assert after.bytes_delivered == 8 * GiB
    (read,) = ledger.items(after)
    assert read.bytes_delivered == 5 * GiB and read.size_hint == 5 * GiB and read.bytes_in_flight == 5 * GiB


def test_an_old_locks_run_changes_nothing_of_the_new_lock(stack, agent, caplog):
    """The Registry expired our lock; the poller locked the job again. The old lock's run learns its lock
    is gone: it must not mark the new lock's record Lost (nor log that it ended)."""
    job = stack.sim.create_job("discovery", {})
    poll_once(agent)
    old = agent.services.records.get(job["Id"])
    stack.sim.expire_lock(job["Id"])
    poll_once(agent)
    new = agent.services.records.get(job["Id"])
    assert new.generation != old.generation and new.locks == 2

    with caplog.at_level(logging.INFO):
        assert lose_job(agent.services, old, "renewal answered 409") is False
        assert release_job(agent.services, old, "an old run gives up") == "Released"

    current = agent.services.records.get(job["Id"])
    assert current.state == "Queued" and current.generation == new.generation
    assert job_lines(caplog, job["Id"]) == []
    drain(agent)
    assert stack.sim.job(job["Id"])["State"] == "Completed"


def test_waiting_for_a_slow_export_is_not_a_failed_attempt(stack, vms):
    """An export that takes far longer than one run's wait: the item is handed back more times than its
    whole allowance of runs (1 failure, 2 unfinished runs), and still delivers."""
    vms.configure(ExportDurationSeconds=27)  # EEN is polled every 5 s at most: about 6 runs
    agent = quick_agent(stack, ITEM_FAILURE_LIMIT="1", EEN_VIDEO_ROUTE="export")
    agent.services.wait_in_run = 0.05
    camera, start, end = recorded_camera(vms, minutes=5)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})
    poll_once(agent)
    outcomes = drain(agent, timeout=120)

    assert outcomes.count("Waiting") >= 4
    assert stack.sim.job(job["Id"])["State"] == "Completed"
    record = agent.services.records.get(job["Id"])
    (item,) = agent.services.ledger.items(agent.services.ledger.get_plan(job["Id"], record.generation))
    assert item.state == ItemState.DELIVERED and item.failures == 0 and item.waits == outcomes.count("Waiting")


def test_an_export_past_its_deadline_fails_the_item_once_and_is_removed(stack, vms):
    agent = quick_agent(stack, EEN_VIDEO_ROUTE="export", EXPORT_TIMEOUT_SECONDS="10")
    vms.configure(ExportDurationSeconds=3600)
    agent.services.wait_in_run = 0.05
    agent.services.export_timeout = 1.0
    camera, start, end = recorded_camera(vms, minutes=5)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})
    poll_once(agent)
    drain(agent, timeout=60)

    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Failed" and "EXPORT_TIMEOUT_SECONDS" in seen["CompletionMessage"]
    assert vms.leftovers() == []
    assert history(stack, job["Id"], "lock", 200) == 1


def test_a_refused_completion_ends_the_job_at_once_with_the_reason(stack, agent, caplog):
    job = stack.sim.create_job("discovery", {})
    stack.sim.add_step_fault("complete", "Status", job_id=job["Id"], status=400, every=True)
    poll_once(agent)
    with caplog.at_level(logging.INFO):
        drain(agent)

    record = agent.services.records.get(job["Id"])
    assert record.state == "Refused" and "refused" in record.last_error
    assert stack.sim.job(job["Id"])["State"] == "Canceled"
    (line,) = job_lines(caplog, job["Id"])
    assert "state=Refused" in line
    plan = agent.services.ledger.get_plan(job["Id"], record.generation)
    assert plan.state == "Done" and plan.outcome == "Refused"


def test_a_completion_that_keeps_failing_reaches_the_poison_queue_and_the_job_is_released(stack, vms, caplog):
    agent = quick_agent(stack, MAX_DEQUEUE_COUNT="3")
    job = stack.sim.create_job("discovery", {})
    stack.sim.add_step_fault("complete", "Status", job_id=job["Id"], status=503, every=True)
    poll_once(agent)
    with caplog.at_level(logging.INFO):
        outcomes = drain(agent, timeout=60)

    assert outcomes.count("Poisoned") == 1
    poisoned = [decode_message(m.content) for m in agent.services.poison_queue.peek_messages(max_messages=32)]
    assert [m.job_id for m in poisoned] == [job["Id"]]
    record = agent.services.records.get(job["Id"])
    assert record.state == "Released" and "poison" in record.last_error and record.releases == 1
    plan = agent.services.ledger.get_plan(job["Id"], record.generation)
    assert plan.state == "Done" and plan.outcome == "Released"  # no plan is left Completing for the sweep
    assert stack.sim.job(job["Id"])["State"] == "Available"
    assert len(job_lines(caplog, job["Id"])) == 1


def test_a_job_released_too_often_is_canceled_at_its_next_lock(stack, agent):
    job = stack.sim.create_job("discovery", {})
    for _ in range(agent.services.release_limit):
        poll_once(agent)
        record = agent.services.records.get(job["Id"])
        release_job(agent.services, record, "the VMS was down")
    result = poll_once(agent)

    assert result.canceled == [job["Id"]]
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Canceled" and "RELEASE_LIMIT" in seen["CancelReason"]
    assert agent.services.records.get(job["Id"]).state == "Canceled"


def test_a_job_older_than_the_maximum_age_across_its_locks_is_canceled(stack, agent):
    job = stack.sim.create_job("discovery", {})
    poll_once(agent)
    record = agent.services.records.get(job["Id"])
    old = replace(record, first_locked=datetime.now(UTC) - timedelta(hours=5))
    agent.services.records.save(old)
    release_job(agent.services, agent.services.records.get(job["Id"]), "slow")
    poll_once(agent)

    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Canceled" and "MAX_JOB_AGE_MINUTES" in seen["CancelReason"]


def test_a_refused_vms_credential_pauses_the_agent_instead_of_a_lock_release_loop(stack, vms, caplog):
    agent = quick_agent(stack, AGENT_PAUSE_SECONDS="5")
    vms.revoke_grant()
    jobs = [stack.sim.create_job("discovery", {})["Id"] for _ in range(3)]
    with caplog.at_level(logging.INFO):
        poll_once(agent)
        drain(agent)
        for _ in range(5):
            assert poll_once(agent).paused
    locks = sum(history(stack, job, "lock", 200) for job in jobs)
    assert locks == 3  # each locked once (the first poll), released once, then nothing while paused
    assert any("Agent paused" in r.getMessage() and "configuration" in r.getMessage() for r in caplog.records)
    pause = agent.services.pause.current()
    assert pause is not None and pause.until > datetime.now(UTC)

    # the operator stores a new consent; once the pause is over the probe succeeds and work resumes
    fresh = vms.new_grant()
    same_storage = {
        "LOCKS_TABLE_NAME": agent.settings.locks_table,
        "JOBS_QUEUE_NAME": agent.settings.jobs_queue,
        "EEN_TOKEN_TABLE": agent.settings.vms.een_token_table,
    }
    agent = quick_agent(stack, AGENT_PAUSE_SECONDS="5", EEN_REFRESH_TOKEN=fresh, **same_storage)
    end_pause(agent)  # the pause is over: the next poll probes the VMS
    poll_once(agent)
    drain(agent)
    assert [stack.sim.job(job)["State"] for job in jobs] == ["Completed"] * 3


def test_many_gaps_are_planned_without_reaching_any_table_limit(stack, vms, agent):
    """8 cameras with 60 short recordings each in a 2-hour window: ~480 gaps and ~480 items."""
    start = (datetime.now(UTC) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    windows = []
    for number in range(8):
        recordings = [
            [(start + timedelta(minutes=2 * n)).isoformat(), (start + timedelta(minutes=2 * n, seconds=20)).isoformat()]
            for n in range(60)
        ]
        camera = vms.add_camera(Name=f"gappy-{number}", Recordings=recordings)
        windows.append(window(camera["Id"], start, start + timedelta(hours=2)))
    job = stack.sim.create_job("mediarequest", {"Cameras": windows})
    poll_once(agent)
    (message,) = agent.queue.receive_messages(max_messages=1, visibility_timeout=300)

    assert (
        process_message(message.content, dequeue_count=1, message_id=message.id, services=agent.services) == "Planned"
    )
    record = agent.services.records.get(job["Id"])
    plan = agent.services.ledger.get_plan(job["Id"], record.generation)
    assert plan.items_total == 480 and plan.gaps_total >= 480
    assert len(agent.services.ledger.gaps(plan)) == plan.gaps_total


def test_two_planners_of_one_lock_leave_one_plan_and_never_reset_an_item(stack, vms, agent):
    camera, start, end = recorded_camera(vms, minutes=45)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})
    poll_once(agent)
    (message,) = agent.queue.receive_messages(max_messages=1, visibility_timeout=300)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def plan(name: str) -> None:
        barrier.wait()
        outcomes.append(process_message(message.content, dequeue_count=1, message_id=name, services=agent.services))

    threads = [threading.Thread(target=plan, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    agent.queue.delete_message(message)

    record = agent.services.records.get(job["Id"])
    plan_row = agent.services.ledger.get_plan(job["Id"], record.generation)
    items = agent.services.ledger.items(plan_row)
    assert plan_row.items_total == len(items) == 3
    # an item starts running; a late copy of the job message must not reset it
    claimed = agent.services.ledger.save_item(replace(items[0], state=ItemState.RUNNING, owner="someone", attempts=1,
                                                       heartbeat=datetime.now(UTC)))  # fmt: skip
    assert process_message(message.content, dequeue_count=1, message_id="late", services=agent.services) == "Duplicate"
    assert agent.services.ledger.get_item(job["Id"], record.generation, claimed.item_id).owner == "someone"
    agent.services.ledger.save_item(replace(claimed, state="Pending", owner="", heartbeat=None))
    drain(agent, timeout=90)
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Completed" and len(seen["Files"]) == 3


def test_the_sweep_puts_an_item_no_run_carries_back_on_the_queue(stack, vms, agent):
    camera, start, end = recorded_camera(vms, minutes=10)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})
    poll_once(agent)
    (message,) = agent.queue.receive_messages(max_messages=1, visibility_timeout=300)
    assert plan_only(agent, message) == "Planned"
    agent.queue.delete_message(message)
    for item_message in agent.queue.receive_messages(max_messages=32, visibility_timeout=300):
        agent.queue.delete_message(item_message)  # the item's message is lost; its run "died" holding it
    record = agent.services.records.get(job["Id"])
    plan = agent.services.ledger.get_plan(job["Id"], record.generation)
    (item,) = agent.services.ledger.items(plan)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    agent.services.ledger.save_item(
        replace(item, state=ItemState.RUNNING, owner="dead", attempts=1, heartbeat=long_ago)
    )
    agent.services.sweep_after = 0.0

    result = renew_all(agent.services, margin=timedelta(seconds=0))

    assert result.swept.items == [f"{job['Id']}/{item.item_id}"]
    drain(agent)
    assert stack.sim.job(job["Id"])["State"] == "Completed"


def test_finished_jobs_are_deleted_after_the_retention_period_and_never_read_by_polls(stack, agent):
    job = stack.sim.create_job("discovery", {})
    poll_once(agent)
    drain(agent)
    record = agent.services.records.get(job["Id"])
    assert record.state == "Completed" and agent.services.records.count_active() == 0
    agent.services.retention = timedelta(seconds=0)

    renew_all(agent.services, margin=timedelta(seconds=0))

    assert agent.services.records.get(job["Id"]) is None
    table = agent.services.ledger.table
    assert list(table.query_entities("PartitionKey eq @pk", parameters={"pk": job["Id"]})) == []


class AnswerLostTransport(RequestsTransport):
    """Sends the request (storage applies it), then loses the answer once: the SDK retries the same write,
    whose If-Match now meets the ETag of our own first write (412)."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        response = super().send(request, **kwargs)
        if self.armed and request.method in ("PUT", "MERGE", "POST", "PATCH"):
            self.armed = False
            raise ServiceResponseError("connection reset after the request was sent")
        return response


def test_a_write_whose_answer_was_lost_is_recognised_as_ours(stack, agent):
    transport = AnswerLostTransport()
    service = TableServiceClient.from_connection_string(stack.storage_connection_string, transport=transport)
    table = service.get_table_client(agent.settings.locks_table)
    agent.services.records.ensure_table()
    ledger, records = Ledger(table), LockRecords(table)
    plan_id = new_plan_id()
    plan, _ = ledger.create_plan(Plan("job-w", "g", "discovery", plan_id=plan_id, items_total=1, items_remaining=1),
                                 [WorkItem("job-w", "g", f"{plan_id}-d", "discovery")], [])  # fmt: skip
    (item,) = ledger.items(plan)

    transport.armed = True
    saved = ledger.save_item(replace(item, state=ItemState.RUNNING, owner="me", attempts=1))
    assert ledger.get_item("job-w", "g", item.item_id).etag == saved.etag

    created = records.create(LockRecord("job-w", "discovery", "token", datetime.now(UTC) + timedelta(minutes=5)))
    transport.armed = True
    moved = records.save(created.moved_to("Processing"))
    assert records.get("job-w").etag == moved.etag and moved.state == "Processing"


def test_the_stored_job_is_what_the_registry_offered(agent):
    agent.services.records.ensure_table()
    parameters = {"CameraIds": [f"camera-{n}-{'é' * 30}" for n in range(1300)]}
    agent.services.ledger.put_job(OfferedJob("job-p", "g", "thumbnail", parameters))
    assert agent.services.ledger.get_job("job-p", "g").parameters == parameters


def test_an_item_of_a_stale_message_is_not_run(stack, agent):
    job = stack.sim.create_job("discovery", {})
    poll_once(agent)
    (message,) = agent.queue.receive_messages(max_messages=1, visibility_timeout=300)
    assert plan_only(agent, message) == "Planned"
    (item_message,) = agent.queue.receive_messages(max_messages=1, visibility_timeout=300)
    stack.sim.expire_lock(job["Id"])
    poll_once(agent)  # a new lock: the old plan's item must do nothing
    assert run_item(decode_message(item_message.content), message_id="x", services=agent.services) == "Stale"


def test_an_export_created_but_never_recorded_is_found_by_its_tag_and_removed(stack, vms):
    """The VMS creates the export but its answer never arrives (as if the run died right then): the item
    had recorded its intent first, so the next run removes what carries its tag before starting again."""
    agent = quick_agent(stack, EEN_VIDEO_ROUTE="export")
    vms.configure(ExportDurationSeconds=0)
    vms.drop_after_create(count=1)
    camera, start, end = recorded_camera(vms, minutes=5)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})
    poll_once(agent)
    outcomes = drain(agent, timeout=90)

    assert "RetryLater" in outcomes
    assert stack.sim.job(job["Id"])["State"] == "Completed"
    assert vms.leftovers() == []


def test_jobs_in_flight_recorded_by_an_earlier_version_are_still_renewed(stack, agent):
    """Records written before the active index existed are indexed on first use, so an upgrade strands no job."""
    job = stack.sim.create_job("discovery", {})
    poll_once(agent)
    table = agent.services.ledger.table
    table.delete_entity("active", job["Id"])  # as an earlier version left it: a record, no index row
    later = quick_agent(stack, LOCKS_TABLE_NAME=agent.settings.locks_table, JOBS_QUEUE_NAME=agent.settings.jobs_queue)

    assert [record.job_id for record in later.services.records.active()] == [job["Id"]]
    assert later.services.records.count_active() == 1
