"""The agent's functions, called in process against the whole local stack (Registry simulator, VMS
simulator, Azurite): jobs become plans of work items, end in the right state, files verify, and
nothing is delivered twice."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from shared.agent.states import ItemState
from shared.agent.work.ledger import generation_of
from tests.integration.agent_helpers import (
    drain,
    history,
    plan_only,
    poll_once,
    quick_agent,
    recorded_camera,
    run_job,
    window,
)
from tests.integration.vms_helpers import new_tag

pytestmark = pytest.mark.integration


@pytest.fixture
def make_agent(stack, vms):
    def make(**overrides):
        return quick_agent(stack, **overrides)

    return make


@pytest.fixture
def agent(make_agent):
    return make_agent()


def plan_of(agent, job_id: str):
    record = agent.services.records.get(job_id)
    generation = generation_of(record.lock_token)
    plan = agent.services.ledger.get_plan(job_id, generation)
    return plan, agent.services.ledger.items(plan) if plan is not None else []


def test_all_three_job_types_complete_and_every_file_verifies(stack, vms, agent):
    cam_a, start, end = recorded_camera(vms, name="a")
    cam_b, *_ = recorded_camera(vms, name="b")
    media = stack.sim.create_job(
        "mediarequest", {"RequestId": "r1", "Cameras": [window(cam_a, start, end), window(cam_b, start, end)]}
    )
    thumbs = stack.sim.create_job("thumbnail", {"CameraIds": [cam_a, cam_b]})
    discovery = stack.sim.create_job("discovery", {})
    assert len(poll_once(agent).locked) == 3
    outcomes = drain(agent)
    assert outcomes.count("Planned") == 1  # the thumbnail and discovery jobs: one item each, run by their planner
    for job, files in ((media, 4), (thumbs, 2), (discovery, 1)):  # 20 minutes = two 15-minute pieces
        seen = stack.sim.job(job["Id"])
        assert seen["State"] == "Completed", seen
        assert [f["Verification"]["Ok"] for f in seen["Files"]] == [True] * files
        assert history(stack, job["Id"], "complete", 204) == 1
        assert agent.services.records.get(job["Id"]).state == "Completed"


def test_a_window_is_cut_into_wall_clock_segments_each_named_and_reported_as_itself(stack, vms, agent):
    camera, start, _ = recorded_camera(vms, minutes=90)
    quarter = start.replace(minute=start.minute - start.minute % 15) + timedelta(minutes=15)
    first, last = quarter - timedelta(minutes=8), quarter + timedelta(minutes=23)  # :07 → :15 → :30 → :38
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, first, last)]})
    run_job(agent)
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Completed"
    reported = sorted(
        (f["CompletionFields"]["StartTimeUtc"], f["CompletionFields"]["EndTimeUtc"]) for f in seen["Files"]
    )
    expected_cuts = [first, quarter, quarter + timedelta(minutes=15), last]
    assert [r[0][:19] for r in reported] == [c.strftime("%Y-%m-%dT%H:%M:%S") for c in expected_cuts[:-1]]
    assert [r[1][:19] for r in reported] == [c.strftime("%Y-%m-%dT%H:%M:%S") for c in expected_cuts[1:]]
    assert len({f["FileName"] for f in seen["Files"]}) == 3
    plan, items = plan_of(agent, job["Id"])
    assert plan.items_total == 3 and plan.items_remaining == 0 and plan.files_delivered == 3
    assert plan.bytes_delivered == sum(f["Verification"]["Size"] for f in seen["Files"])
    assert all(item.state == ItemState.DELIVERED and item.attempts == 1 for item in items)


def test_a_camera_without_footage_makes_the_request_partially_completed(stack, vms, agent):
    cam_a, start, end = recorded_camera(vms, name="a")
    empty = vms.add_camera(Name="empty", Recordings="none")["Id"]
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(cam_a, start, end), window(empty, start, end)]})
    run_job(agent)
    seen = stack.sim.job(job["Id"])
    assert seen["CompletionState"] == "PartiallyCompleted" and empty in seen["CompletionMessage"]


def test_nothing_recorded_at_all_fails_the_job_without_any_upload(stack, vms, agent):
    empty = vms.add_camera(Name="empty", Recordings="none")["Id"]
    _, start, end = recorded_camera(vms)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(empty, start, end)]})
    run_job(agent)
    seen = stack.sim.job(job["Id"])
    assert seen["CompletionState"] == "Failed" and "Video unavailable" in seen["CompletionMessage"]
    assert seen["Files"] == []


def test_an_unknown_camera_cancels_the_job_before_anything_is_uploaded(stack, vms, agent):
    cam_a, start, end = recorded_camera(vms)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(cam_a, start, end), window("ffffffff", start, end)]})
    assert run_job(agent) == ["Canceled"]
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Canceled" and "ffffffff" in seen["CancelReason"] and seen["Files"] == []


def test_an_unknown_thumbnail_camera_cancels_before_any_snapshot_is_uploaded(stack, vms, agent):
    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam, "ffff1234"]})
    assert run_job(agent) == ["Canceled"]
    seen = stack.sim.job(job["Id"])
    assert "ffff1234" in seen["CancelReason"] and seen["Files"] == []


def test_malformed_parameters_cancel_the_job(stack, vms, agent):
    job = stack.sim.create_job("thumbnail", {"CameraIds": []})
    assert run_job(agent) == ["Canceled"]
    assert "CameraIds" in stack.sim.job(job["Id"])["CancelReason"]


def test_a_duplicate_job_message_plans_once(stack, vms, agent):
    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})
    poll_once(agent)
    message = agent.queue.peek_messages()[0]
    agent.queue.send_message(message.content)  # the same job enqueued twice
    outcomes = drain(agent, workers=1)
    assert sorted(outcomes) == ["Delivered", "Duplicate"]  # one item: run by the run that planned it
    assert history(stack, job["Id"], "complete", 204) == 1 and len(stack.sim.job(job["Id"])["Files"]) == 1


def test_a_redelivered_item_that_was_delivered_does_nothing(stack, vms, agent):
    camera, start, end = recorded_camera(vms, minutes=30)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})
    poll_once(agent)
    assert drain_one_item_then_stop(agent) == "Delivered"
    plan, items = plan_of(agent, job["Id"])
    delivered = next(i for i in items if i.state == ItemState.DELIVERED)
    from shared.agent.work.messages import encode_item

    for _ in range(3):  # the same item's message, delivered again and again
        agent.queue.send_message(encode_item(delivered.job_id, delivered.generation, delivered.item_id))
    uploads_before = history(stack, job["Id"], "initialize_upload")
    outcomes = drain(agent, workers=1)
    assert outcomes.count("Duplicate") + outcomes.count("Stale") == 3  # before / after the job completed
    others = plan.items_total - 1
    assert history(stack, job["Id"], "initialize_upload") == uploads_before + others  # only the other items
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Completed" and len(seen["Files"]) == plan.items_total
    assert history(stack, job["Id"], "complete", 204) == 1


def drain_one_item_then_stop(agent) -> str:
    """Plan the job, then run exactly one of its item messages."""
    from shared.agent.work.processor import process_message

    job_message = next(iter(agent.queue.receive_messages(max_messages=1, visibility_timeout=60)))
    assert (
        process_message(job_message.content, dequeue_count=1, message_id=job_message.id, services=agent.services)
        == "Planned"
    )
    agent.queue.delete_message(job_message)
    item_message = next(iter(agent.queue.receive_messages(max_messages=1, visibility_timeout=60)))
    outcome = process_message(
        item_message.content, dequeue_count=1, message_id=item_message.id, services=agent.services
    )
    agent.queue.delete_message(item_message)
    return outcome


def test_a_malformed_message_goes_to_the_poison_queue_on_its_first_delivery_logged_once_without_its_body(
    stack, agent, caplog
):
    from shared.agent.work.processor import process_message

    secretish = b'{"not": "a job", "token": "SECRET-VALUE-123"}'
    with caplog.at_level(logging.INFO):
        assert process_message(secretish, dequeue_count=1, message_id="msg-1", services=agent.services) == "Poisoned"
    poisoned = agent.services.poison_queue.peek_messages()
    assert [m.content for m in poisoned] == [secretish]
    lines = [r.getMessage() for r in caplog.records if "msg-1" in r.getMessage()]
    assert len(lines) == 1 and "poison" in lines[0]
    assert "SECRET-VALUE-123" not in caplog.text


def test_an_idle_poll_costs_one_registry_call_and_writes_nothing(stack, agent):
    agent.queue.create_queue()
    before = len(stack.sim.requests())
    result = poll_once(agent)
    calls = [r["Operation"] for r in stack.sim.requests()[before:] if r["Operation"] != "token"]
    assert calls == ["list_jobs"] and result.locked == []
    assert list(agent.services.records.active()) == [] and agent.queue.peek_messages() == []


def test_capacity_is_respected_and_small_jobs_are_not_starved(stack, vms, make_agent):
    agent = make_agent(MAX_IN_FLIGHT_JOBS="4")
    cam, start, end = recorded_camera(vms)
    media = [stack.sim.create_job("mediarequest", {"Cameras": [window(cam, start, end)]})["Id"] for _ in range(5)]
    thumb = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})["Id"]
    result = poll_once(agent)
    assert len(result.locked) == 4 and thumb in result.locked
    assert set(result.locked) - {thumb} <= set(media)
    assert poll_once(agent).locked == []  # at capacity: no more


# ---- exactly once across crashes -------------------------------------------------------------------------


def planned_media_job(stack, vms, agent, minutes: int = 10):
    """A one-camera media job, planned (not run): its lock record, plan and single item."""
    camera, start, _ = recorded_camera(vms, minutes=60)
    quarter = start.replace(minute=start.minute - start.minute % 15) + timedelta(minutes=15)
    job = stack.sim.create_job(
        "mediarequest", {"Cameras": [window(camera, quarter, quarter + timedelta(minutes=minutes))]}
    )
    poll_once(agent)
    job_message = next(iter(agent.queue.receive_messages(max_messages=1, visibility_timeout=60)))
    assert plan_only(agent, job_message, "job-msg") == "Planned"
    agent.queue.delete_message(job_message)
    _, items = plan_of(agent, job["Id"])
    assert len(items) == 1
    return job["Id"], items[0]


def died_running(agent, item, **changes):
    """The ledger as a run leaves it when its process is killed: Running, its heartbeat going stale."""
    from dataclasses import replace

    from shared.agent.states import ItemState
    from shared.agent.work.ledger import utc_now

    stale = utc_now() - timedelta(minutes=5)
    return agent.services.ledger.save_item(
        replace(item, state=ItemState.RUNNING, owner="dead-message#1", attempts=1, heartbeat=stale, **changes)
    )


def test_an_item_whose_run_died_before_committing_is_redone_once_with_a_fresh_upload(stack, vms, agent):
    job_id, item = planned_media_job(stack, vms, agent)
    died_running(agent, item)
    drain(agent)
    seen = stack.sim.job(job_id)
    assert seen["State"] == "Completed" and history(stack, job_id, "complete", 204) == 1
    assert [f["Completed"] for f in seen["Files"]] == [True]
    _, (redone,) = plan_of(agent, job_id)
    assert redone.state == ItemState.DELIVERED and redone.attempts == 2


def test_a_file_recorded_as_committing_but_never_committed_is_uploaded_afresh_and_completed_once(stack, vms, agent):
    from shared.agent.states import FileKind, FileState
    from shared.agent.work.ledger import FileEntry
    from shared.agent.work.naming import media_name

    job_id, item = planned_media_job(stack, vms, agent)
    record = agent.services.records.get(job_id)
    abandoned = agent.services.registry.initialize_upload(job_id, record.lock_token, "abandoned.mp4", "video/mp4")
    facts = {"CameraId": item.camera_id, "StartTimeUtc": item.start.isoformat(), "EndTimeUtc": item.end.isoformat()}
    entry = FileEntry(
        media_name(item.camera_id, item.start, item.end),
        FileKind.MEDIA,
        facts,
        FileState.COMMITTING,
        abandoned.file_id,
        123,
        "0" * 64,
    )
    died_running(agent, item, files=(entry,))
    drain(agent)
    seen = stack.sim.job(job_id)
    assert seen["State"] == "Completed"
    completed = [f for f in seen["Files"] if f["Completed"]]
    assert len(completed) == 1 and completed[0]["FileId"] != abandoned.file_id
    assert completed[0]["Verification"]["Ok"] is True


def test_a_file_committed_but_not_completed_is_completed_without_a_second_upload(stack, vms, agent):
    from shared.agent.states import FileKind, FileState
    from shared.agent.work.ledger import FileEntry
    from shared.agent.work.naming import media_name

    job_id, item = planned_media_job(stack, vms, agent)
    record = agent.services.records.get(job_id)
    services = agent.services
    ticket = services.vms.start_clip(item.camera_id, item.start, item.end, tag=new_tag())
    (download,) = services.vms.poll_clip(ticket).downloads
    name = media_name(item.camera_id, download.start, download.end)
    upload = services.registry.initialize_upload(job_id, record.lock_token, name, "video/mp4")
    with services.vms.open_download(download) as source:
        result = services.uploader.upload(upload.uri, upload.json_web_key, source, content_type="video/mp4")
    facts = {
        "CameraId": item.camera_id,
        "StartTimeUtc": download.start.isoformat(),
        "EndTimeUtc": download.end.isoformat(),
    }
    entry = FileEntry(name, FileKind.MEDIA, facts, FileState.COMMITTED, upload.file_id, result.size, result.sha256)
    died_running(agent, item, files=(entry,), ticket=ticket)
    uploads_before = history(stack, job_id, "initialize_upload")
    drain(agent)
    seen = stack.sim.job(job_id)
    assert seen["State"] == "Completed"
    assert history(stack, job_id, "initialize_upload") == uploads_before  # no second upload
    assert [f["FileId"] for f in seen["Files"] if f["Completed"]] == [upload.file_id]


def test_a_duplicate_message_for_an_item_another_live_run_holds_is_deferred_not_run(stack, vms, agent):
    from dataclasses import replace

    from shared.agent.states import ItemState
    from shared.agent.work.ledger import utc_now
    from shared.agent.work.messages import encode_item
    from shared.agent.work.processor import process_message

    job_id, item = planned_media_job(stack, vms, agent)
    item_message = next(iter(agent.queue.receive_messages(max_messages=1, visibility_timeout=60)))
    agent.services.ledger.save_item(
        replace(item, state=ItemState.RUNNING, owner="other#1", attempts=1, heartbeat=utc_now())
    )
    body = encode_item(item.job_id, item.generation, item.item_id)
    assert process_message(body, dequeue_count=1, message_id="dup", services=agent.services) == "Deferred"
    assert history(stack, job_id, "initialize_upload") == 0
    agent.queue.delete_message(item_message)


def test_when_two_items_finish_at_the_same_moment_the_job_is_completed_exactly_once(stack, vms, agent):
    import threading
    from dataclasses import replace

    from shared.agent.work.completion import complete_job, finish_item

    camera, start, _ = recorded_camera(vms, minutes=60)
    quarter = start.replace(minute=start.minute - start.minute % 15) + timedelta(minutes=15)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, quarter, quarter + timedelta(minutes=30))]})
    poll_once(agent)
    from shared.agent.work.processor import process_message

    job_message = next(iter(agent.queue.receive_messages(max_messages=1, visibility_timeout=60)))
    process_message(job_message.content, dequeue_count=1, message_id="job", services=agent.services)
    record = agent.services.records.get(job["Id"])
    _, items = plan_of(agent, job["Id"])
    assert len(items) == 2
    barrier = threading.Barrier(len(items))
    errors: list[BaseException] = []

    def finish(item):
        try:
            barrier.wait()
            final = replace(item, state="Missing", missing=(f"{item.item_id} (test)",))
            _, plan = finish_item(agent.services, record, final)
            if plan.state == "Completing":  # the last one completes the job, as the worker does
                complete_job(agent.services, record, plan)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    plan, _ = plan_of(agent, job["Id"])
    assert plan.items_remaining == 0 and plan.items_missing == 2 and plan.state == "Done"
    assert history(stack, job["Id"], "complete", 204) == 1
    assert stack.sim.job(job["Id"])["CompletionState"] == "Failed"


# ---- locks -------------------------------------------------------------------------------------------------


def test_a_lock_lost_mid_upload_stops_without_completing_and_a_new_lock_starts_a_fresh_plan(stack, vms, agent):
    import threading

    from shared.agent.locks.renewer import renew_all

    camera, start, _ = recorded_camera(vms, minutes=60)
    quarter = start.replace(minute=start.minute - start.minute % 15) + timedelta(minutes=15)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, quarter, quarter + timedelta(minutes=30))]})
    poll_once(agent)
    first_generation = generation_of(agent.services.records.get(job["Id"]).lock_token)
    vms.trickle_downloads(bytes_per_second=400_000, count=2)  # ~18 s per 15-minute file: time to lose the lock
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.extend(drain(agent, workers=2)))
    worker.start()
    started = False
    for _ in range(200):  # wait until an upload is under way
        if stack.sim.job(job["Id"])["Files"]:
            started = True
            break
        threading.Event().wait(0.1)
    assert started, "no upload started"
    stack.sim.expire_lock(job["Id"])
    renew_all(agent.services, margin=timedelta(hours=1))
    worker.join(timeout=90)
    assert outcome.count("Lost") == 2
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Available" and history(stack, job["Id"], "complete") == 0
    assert not any(f["Completed"] for f in seen["Files"])
    assert agent.services.records.get(job["Id"]).state == "Lost"
    vms.clear_faults()
    run_job(agent)
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Completed" and history(stack, job["Id"], "complete", 204) == 1
    second_generation = generation_of(agent.services.records.get(job["Id"]).lock_token)
    assert second_generation != first_generation
    old = agent.services.ledger.get_plan(job["Id"], first_generation)
    new = agent.services.ledger.get_plan(job["Id"], second_generation)
    assert old.files_delivered == 0 and new.files_delivered == 2 and new.items_total == 2


def test_a_vms_outage_retries_each_item_then_releases_the_job_and_it_completes_later(stack, vms, make_agent):
    agent = make_agent(ITEM_FAILURE_LIMIT="3")
    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})
    vms.inject_fault("live_image", 500, count=1000)
    outcomes = run_job(agent)
    assert outcomes == ["RetryLater", "RetryLater", "RetryLater", "Failed"]  # run first by its planner; gave up
    assert stack.sim.job(job["Id"])["State"] == "Available"
    assert agent.services.records.get(job["Id"]).state == "Released"
    vms.clear_faults()
    run_job(agent)
    assert stack.sim.job(job["Id"])["State"] == "Completed"
    assert history(stack, job["Id"], "complete", 204) == 1


def test_our_own_bad_upload_setting_releases_the_job_and_names_the_setting_never_cancels(
    stack, vms, make_agent, caplog
):
    agent = make_agent(UPLOAD_ALLOW_HTTP_LOOPBACK="false")
    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})
    with caplog.at_level(logging.WARNING):
        outcomes = run_job(agent)
    assert "Released" in outcomes
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Available" and history(stack, job["Id"], "cancel") == 0
    assert "UPLOAD_ALLOW_HTTP_LOOPBACK" in agent.services.records.get(job["Id"]).last_error
    assert "Job ended: state=Released" in caplog.text and "UPLOAD_ALLOW_HTTP_LOOPBACK" in caplog.text
