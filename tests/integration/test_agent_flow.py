"""The agent's three functions, called in process against the whole local stack (Registry simulator,
VMS simulator, Azurite): jobs end in the right state, files verify, nothing is done twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from devstack.agent_env import agent_settings
from shared.agent.messages import MalformedMessage
from shared.agent.poller import poll
from shared.agent.processor import RetryLater, process_message
from shared.agent.renewer import renew_all
from shared.agent.runtime import build_agent
from shared.settings import AgentSettings


@pytest.fixture
def vms(stack):
    control = stack.een.control
    control.reset()
    control.configure(BitrateKbps=64)  # small files: 10 minutes ≈ 4.8 MB
    yield control
    control.clear_faults()


@pytest.fixture
def make_agent(stack, vms):
    def make(**overrides):
        env = agent_settings(stack, unique=True, **overrides)
        return build_agent(AgentSettings.from_env(env))

    return make


@pytest.fixture
def agent(make_agent):
    return make_agent()


def recorded_camera(vms, minutes: int = 20, name: str = "cam") -> tuple[str, datetime, datetime]:
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    camera = vms.add_camera(Name=name, Recordings=[[start.isoformat(), end.isoformat()]])
    return camera["Id"], start, end


def window(camera_id: str, start: datetime, end: datetime) -> dict:
    return {"CameraId": camera_id, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()}


def drain(agent, *, dequeue_count: int = 1) -> list[str]:
    """Process the queued messages once, as the host would: delete on success, make visible again on failure."""
    outcomes = []
    for message in list(agent.queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=120)):
        try:
            outcomes.append(
                process_message(
                    message.content,
                    dequeue_count=max(dequeue_count, message.dequeue_count),
                    message_id=message.id,
                    services=agent.services,
                )
            )
        except RetryLater:
            outcomes.append("RetryLater")
            agent.queue.update_message(message, visibility_timeout=0)
            continue
        agent.queue.delete_message(message)
    return outcomes


def poll_once(agent):
    return poll(
        agent.services.registry, agent.services.records, agent.queue, max_in_flight=agent.settings.max_in_flight_jobs
    )


def completes(stack, job_id: str) -> int:
    return sum(1 for h in stack.sim.job(job_id)["History"] if h["Operation"] == "complete" and h["Status"] == 204)


def test_all_three_job_types_complete_and_every_file_verifies(stack, vms, agent):
    cam_a, start, end = recorded_camera(vms, name="a")
    cam_b, *_ = recorded_camera(vms, name="b")
    media = stack.sim.create_job(
        "mediarequest", {"RequestId": "r1", "Cameras": [window(cam_a, start, end), window(cam_b, start, end)]}
    )
    thumbs = stack.sim.create_job("thumbnail", {"CameraIds": [cam_a, cam_b]})
    discovery = stack.sim.create_job("discovery", {})
    assert len(poll_once(agent).locked) == 3
    assert sorted(drain(agent)) == ["Completed"] * 3
    for job, files in ((media, 2), (thumbs, 2), (discovery, 1)):
        seen = stack.sim.job(job["Id"])
        assert seen["State"] == "Completed"
        assert [f["Verification"]["Ok"] for f in seen["Files"]] == [True] * files
    assert agent.services.records.get(media["Id"]).state == "Completed"


def test_a_camera_without_footage_makes_the_request_partially_completed(stack, vms, agent):
    cam_a, start, end = recorded_camera(vms, name="a")
    empty = vms.add_camera(Name="empty", Recordings="none")["Id"]
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(cam_a, start, end), window(empty, start, end)]})
    poll_once(agent)
    assert drain(agent) == ["PartiallyCompleted"]
    seen = stack.sim.job(job["Id"])
    assert seen["CompletionState"] == "PartiallyCompleted" and empty in seen["CompletionMessage"]


def test_an_unknown_camera_cancels_the_job_before_anything_is_uploaded(stack, vms, agent):
    cam_a, start, end = recorded_camera(vms)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(cam_a, start, end), window("ffffffff", start, end)]})
    poll_once(agent)
    assert drain(agent) == ["Canceled"]
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Canceled" and "ffffffff" in seen["CancelReason"] and seen["Files"] == []


def test_malformed_parameters_cancel_the_job(stack, vms, agent):
    job = stack.sim.create_job("thumbnail", {"CameraIds": []})
    poll_once(agent)
    assert drain(agent) == ["Canceled"]
    assert "CameraIds" in stack.sim.job(job["Id"])["CancelReason"]


def test_a_vms_outage_is_retried_then_released_on_the_final_delivery_and_completed_later(stack, vms, agent):
    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})
    vms.inject_fault("live_image", 500, count=1000)
    poll_once(agent)
    assert drain(agent) == ["RetryLater"]
    assert agent.services.records.get(job["Id"]).state == "Processing"
    assert drain(agent, dequeue_count=5) == ["Released"]  # the host's final delivery
    assert stack.sim.job(job["Id"])["State"] == "Available"
    vms.clear_faults()
    poll_once(agent)
    assert drain(agent) == ["Completed"]
    assert completes(stack, job["Id"]) == 1


def test_a_duplicate_message_is_processed_once(stack, vms, agent):
    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})
    poll_once(agent)
    message = agent.queue.peek_messages()[0]
    agent.queue.send_message(message.content)  # the same job enqueued twice
    assert sorted(drain(agent)) == ["Completed", "Duplicate"]
    assert completes(stack, job["Id"]) == 1 and len(stack.sim.job(job["Id"])["Files"]) == 1


def test_a_malformed_message_is_refused_for_the_poison_queue(agent):
    with pytest.raises(MalformedMessage, match="not JSON"):
        process_message(b"\x00garbage", dequeue_count=1, message_id="m", services=agent.services)


def test_a_lock_lost_mid_upload_stops_without_completing_and_the_job_is_done_once_later(stack, vms, agent):
    cam, start, end = recorded_camera(vms, minutes=30)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(cam, start, end)]})
    poll_once(agent)
    vms.trickle_downloads(bytes_per_second=2_000_000, count=1)  # ~7 s for the file: time to lose the lock
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.extend(drain(agent)))
    worker.start()
    for _ in range(100):  # wait until the upload is under way
        if stack.sim.job(job["Id"])["Files"]:
            break
        threading.Event().wait(0.1)
    stack.sim.expire_lock(job["Id"])
    renew_all(agent.services.registry, agent.services.records, margin=timedelta(hours=1), max_age=timedelta(hours=3))
    worker.join(timeout=60)
    assert outcome == ["Lost"]
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Available" and completes(stack, job["Id"]) == 0
    assert not any(f["Completed"] for f in seen["Files"])
    poll_once(agent)
    assert drain(agent) == ["Completed"]
    assert completes(stack, job["Id"]) == 1


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


def test_renew_locks_renews_what_is_due_marks_lost_and_abandons_old_jobs(stack, vms, agent):
    cam, *_ = recorded_camera(vms)
    due, lost, old, final = (stack.sim.create_job("thumbnail", {"CameraIds": [cam]})["Id"] for _ in range(4))
    poll_once(agent)
    records = agent.services.records
    before = records.get(due).lock_expires
    stack.sim.advance_clock(60)
    stack.sim.expire_lock(lost)
    aged = records.get(old)
    records.save(aged.moved_to(aged.state, created=aged.created - timedelta(hours=5)))
    records.transition(final, "Completed")
    result = renew_all(agent.services.registry, records, margin=timedelta(minutes=10), max_age=timedelta(hours=3))
    assert result.renewed == [due] and result.lost == [lost] and result.abandoned == [old]
    assert records.get(due).lock_expires > before
    assert (records.get(lost).state, records.get(old).state, records.get(final).state) == (
        "Lost",
        "Abandoned",
        "Completed",
    )
    assert stack.sim.job(old)["State"] == "Available"  # released for another try


def test_a_failed_enqueue_releases_the_job_and_says_why(stack, vms, agent, monkeypatch):
    from azure.core.exceptions import ServiceRequestError

    cam, *_ = recorded_camera(vms)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [cam]})["Id"]

    def broken(*args, **kwargs):
        raise ServiceRequestError("queue unreachable")

    monkeypatch.setattr(agent.queue, "send_message", broken)
    result = poll_once(agent)
    assert result.released == [job] and result.locked == []
    assert stack.sim.job(job)["State"] == "Available"
    record = agent.services.records.get(job)
    assert record.state == "Released" and "enqueue failed" in record.last_error
