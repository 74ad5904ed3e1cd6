"""Jobs, locks and their state rules in the simulator (docs/protocol.md §1, §3, §6)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devstack import LocalStack


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def new_job(stack: LocalStack, job_type: str = "mediarequest") -> str:
    return stack.sim.create_jobs(job_type)[0]["Id"]


# -- listing -----------------------------------------------------------------------------------


def test_list_shows_only_available_jobs_oldest_first(agent, stack):
    first, second, third = (job["Id"] for job in stack.sim.create_jobs("discovery", count=3))
    agent.lock_token(second)

    jobs = agent.jobs().json()

    assert [job["Id"] for job in jobs] == [first, third]
    assert set(jobs[0]) == {"Id", "Type", "State", "CreatedUtc", "Parameters"}
    assert all(job["State"] == "Available" for job in jobs)


def test_list_filters_by_type(agent, stack):
    stack.sim.create_jobs("discovery")
    media = new_job(stack, "mediarequest")
    thumb = new_job(stack, "thumbnail")

    jobs = agent.jobs(types="mediarequest,thumbnail").json()

    assert {job["Id"] for job in jobs} == {media, thumb}


def test_list_refuses_unknown_type_filter(agent):
    assert agent.jobs(types="mediarequest,video").status_code == 400


def test_generated_mediarequest_parameters_are_realistic(stack):
    job = stack.sim.create_jobs("mediarequest", count=5)
    now = datetime.now(UTC)
    for parameters in (j["Parameters"] for j in job):
        assert re.fullmatch(r"[0-9a-f-]{36}", parameters["RequestId"])
        assert 1 <= len(parameters["Cameras"]) <= 3
        for camera in parameters["Cameras"]:
            start, end = parse(camera["StartTimeUtc"]), parse(camera["EndTimeUtc"])
            assert camera["StartTimeUtc"].endswith("Z")
            assert timedelta(0) < end - start <= timedelta(hours=2)
            assert end < now


def test_control_api_refuses_unknown_job_type(stack):
    response = requests.post(f"{stack.registry_url}/_sim/jobs", json={"Type": "video"}, timeout=10)

    assert response.status_code == 400


def test_explicit_parameters_are_kept_verbatim(stack):
    job = stack.sim.create_jobs("thumbnail", parameters={"CameraIds": ["north-gate"]})[0]

    assert job["Parameters"] == {"CameraIds": ["north-gate"]}


# -- locking -----------------------------------------------------------------------------------


def test_lock_returns_token_and_expiry_five_minutes_ahead(agent, stack):
    job_id = new_job(stack)

    response = agent.lock(job_id)

    assert response.status_code == 200
    lock = response.json()
    assert lock["JobId"] == job_id and lock["LockToken"]
    (logged,) = [entry for entry in stack.sim.requests() if entry["Operation"] == "lock"]
    expires_in = parse(lock["LockExpirationUtc"]) - parse(logged["TimeUtc"])  # from when it was answered
    assert timedelta(seconds=299) < expires_in <= timedelta(seconds=300)
    assert stack.sim.job(job_id)["State"] == "Locked"


def test_second_agent_gets_409_while_first_holds_lock(agent, other_agent, stack):
    job_id = new_job(stack)

    first, second = agent.lock(job_id), other_agent.lock(job_id)

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.headers["Content-Type"] == "application/problem+json"
    assert set(second.json()) == {"type", "title", "status", "detail"}


def test_same_agent_locking_again_gets_the_same_lock(agent, stack):
    job_id = new_job(stack)

    first, again = agent.lock(job_id).json(), agent.lock(job_id).json()

    assert again == first


def test_lock_on_unknown_job_is_404(agent):
    assert agent.lock("4b1f7a52-0000-0000-0000-000000000000").status_code == 404


def test_lock_on_finished_job_is_410(agent, other_agent, stack):
    job_id = new_job(stack)
    assert agent.complete(job_id, agent.lock_token(job_id), "Failed").status_code == 204

    assert other_agent.lock(job_id).status_code == 410


def test_lock_requires_agent_id(agent, stack):
    job_id = new_job(stack)

    assert agent.call("POST", f"/jobs/{job_id}/lock", {}).status_code == 400


def test_renew_moves_expiry_forward(agent, stack):
    job_id = new_job(stack)
    lock = agent.lock(job_id).json()
    stack.sim.advance_clock(120)

    renewed = agent.renew(job_id, lock["LockToken"])

    assert renewed.status_code == 200
    assert renewed.json()["LockToken"] == lock["LockToken"]
    moved = parse(renewed.json()["LockExpirationUtc"]) - parse(lock["LockExpirationUtc"])
    assert moved >= timedelta(seconds=119)


def test_renew_with_wrong_token_is_409(agent, stack):
    job_id = new_job(stack)
    agent.lock_token(job_id)

    assert agent.renew(job_id, "not-my-token").status_code == 409


def test_lock_is_lost_when_the_clock_passes_its_expiry(agent, other_agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    assert agent.progress(job_id, token, 3, 10).status_code == 204
    stack.sim.advance_clock(301)

    assert [job["Id"] for job in other_agent.jobs().json()] == [job_id]
    assert stack.sim.job(job_id)["Progress"] is None
    renew = agent.renew(job_id, token)
    assert renew.status_code == 409
    assert "expired" in renew.json()["detail"]
    assert agent.complete(job_id, token, "Completed").status_code == 409
    assert other_agent.lock(job_id).status_code == 200


def test_lock_duration_is_configurable(agent, stack):
    stack.sim.configure(lock_duration_seconds=30)
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.advance_clock(31)

    assert agent.renew(job_id, token).status_code == 409


def test_expire_lock_control_makes_the_job_available(agent, other_agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)

    stack.sim.expire_lock(job_id)

    assert agent.renew(job_id, token).status_code == 409
    assert other_agent.lock(job_id).status_code == 200


# -- progress ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("done", "total"), [(-1, 10), (0, -5), (11, 10)])
def test_progress_refuses_negative_or_overflowing_values(agent, stack, done, total):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)

    assert agent.progress(job_id, token, done, total).status_code == 400


def test_progress_is_stored(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)

    assert agent.progress(job_id, token, 4, 8).status_code == 204

    assert stack.sim.job(job_id)["Progress"] == {"TaskProgress": 4, "TaskTotal": 8}


def test_progress_without_the_lock_is_409(agent, stack):
    job_id = new_job(stack)
    agent.lock_token(job_id)

    assert agent.progress(job_id, "stale", 1, 2).status_code == 409


# -- complete, cancel, release ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["Completed", "PartiallyCompleted", "Failed"])
def test_complete_sets_the_final_state(agent, stack, state):
    job_id = new_job(stack)

    token = agent.lock_token(job_id)

    assert agent.complete(job_id, token, state, "camera-02 had no footage").status_code == 204

    job = stack.sim.job(job_id)
    assert job["State"] == state and job["CompletionMessage"] == "camera-02 had no footage"
    assert job["Lock"] is None


@pytest.mark.parametrize("state", ["Canceled", "Locked", "completed", "Done"])
def test_complete_refuses_other_states(agent, stack, state):
    job_id = new_job(stack)

    assert agent.complete(job_id, agent.lock_token(job_id), state).status_code == 400


def test_complete_without_the_lock_is_409(agent, stack):
    job_id = new_job(stack)
    agent.lock_token(job_id)

    assert agent.complete(job_id, "someone-elses", "Completed").status_code == 409


def test_repeated_complete_is_204_but_a_different_state_is_409(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    assert agent.complete(job_id, token, "PartiallyCompleted").status_code == 204

    assert agent.complete(job_id, token, "PartiallyCompleted").status_code == 204
    assert agent.complete(job_id, token, "Completed").status_code == 409
    assert agent.cancel(job_id, token).status_code == 409


def test_cancel_keeps_the_job_unavailable_and_is_idempotent(agent, other_agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)

    assert agent.cancel(job_id, token, "camera not in this VMS").status_code == 204
    assert agent.cancel(job_id, token, "camera not in this VMS").status_code == 204

    job = stack.sim.job(job_id)
    assert job["State"] == "Canceled" and job["CancelReason"] == "camera not in this VMS"
    assert job_id not in [j["Id"] for j in other_agent.jobs().json()]
    assert other_agent.lock(job_id).status_code == 410


def test_cancel_requires_a_reason(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)

    assert agent.call("POST", f"/jobs/{job_id}/cancel", {"LockToken": token}).status_code == 400


def test_release_makes_the_job_available_again_and_is_idempotent(agent, other_agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    agent.progress(job_id, token, 1, 2)

    assert agent.release(job_id, token).status_code == 204
    assert agent.release(job_id, token).status_code == 204

    assert stack.sim.job(job_id)["Progress"] is None
    assert [j["Id"] for j in other_agent.jobs().json()] == [job_id]
    new_token = other_agent.lock_token(job_id)
    assert new_token != token
    assert agent.complete(job_id, token, "Completed").status_code == 409


def test_request_body_names_are_case_insensitive(agent, stack):
    job_id = new_job(stack)
    token = agent.call("POST", f"/jobs/{job_id}/lock", {"agentId": "agent-a"}).json()["LockToken"]

    assert agent.call("POST", f"/jobs/{job_id}/lock/renew", {"lockToken": token}).status_code == 200
    body = {"lockToken": token, "taskProgress": 1, "taskTotal": 3}
    assert agent.call("PUT", f"/jobs/{job_id}/progress", body).status_code == 204


def test_non_json_body_is_refused(agent, stack):
    job_id = new_job(stack)
    response = requests.post(
        f"{agent.base}/jobs/{job_id}/lock",
        data="AgentId=agent-a",
        headers={
            "Authorization": f"Bearer {agent.token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
    )

    assert response.status_code == 415


def test_job_history_records_every_call(agent, other_agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    other_agent.lock(job_id)
    agent.release(job_id, token)

    history = stack.sim.job(job_id)["History"]

    calls = [(entry["Operation"], entry["Status"]) for entry in history]
    assert calls == [("lock", 200), ("lock", 409), ("release", 204)]
    assert "another agent" in history[1]["Detail"]


# -- faults --------------------------------------------------------------------------------------------


def test_injected_429_carries_retry_after_then_calls_succeed_again(agent, stack):
    stack.sim.inject_fault("list_jobs", 429, count=2, retry_after=7)

    first, second, third = agent.jobs(), agent.jobs(), agent.jobs()

    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.headers["Content-Type"] == "application/problem+json"
    assert first.json()["status"] == 429
    assert third.status_code == 200


def test_injected_503_on_token_endpoint(agent, stack):
    stack.sim.inject_fault("token", 503, retry_after=1)

    assert agent.request_token().status_code == 503
    assert agent.request_token().status_code == 200


def test_lost_lock_response_can_be_retried_into_the_same_lock(agent, stack):
    job_id = new_job(stack)
    stack.sim.inject_fault("lock", 503, after_processing=True)

    lost = agent.lock(job_id)
    retried = agent.lock(job_id)

    assert lost.status_code == 503
    assert retried.status_code == 200
    assert stack.sim.job(job_id)["Lock"]["LockToken"] == retried.json()["LockToken"]


def test_lost_complete_response_is_safe_to_retry(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.inject_fault("complete", 500, after_processing=True)

    assert agent.complete(job_id, token, "Completed").status_code == 500
    assert agent.complete(job_id, token, "Completed").status_code == 204
    assert stack.sim.job(job_id)["State"] == "Completed"


def test_injected_latency_slows_only_that_operation(agent, stack):
    agent.token  # noqa: B018 - the token first, so the log below holds only the calls of this test
    stack.sim.inject_latency("list_jobs", 300)
    before = len(stack.sim.requests())

    agent.jobs()

    (logged,) = stack.sim.requests()[before:]
    assert stack.sim.faults()["LatencyMs"] == {"list_jobs": 300}  # armed for that operation alone
    assert logged["Operation"] == "list_jobs" and logged["DurationMs"] >= 300  # the simulator's own record


# -- request log ---------------------------------------------------------------------------------------


def test_request_log_records_calls_without_secrets(agent, stack):
    job_id = new_job(stack)
    assertion = agent.assertion()
    token = agent.request_token(assertion).json()["access_token"]
    lock = agent.call("POST", f"/jobs/{job_id}/lock", {"AgentId": "agent-a"}, token=token)
    lock_token = lock.json()["LockToken"]
    upload = {"LockToken": lock_token, "FileName": "a.mp4", "ContentType": "video/mp4"}
    ticket = agent.call("POST", f"/jobs/{job_id}/files", upload, token=token).json()
    requests.get(f"{agent.base}/agents/agent-a/jobs?types=thumbnail&access_token={token}", timeout=10)

    log = stack.sim.requests()

    assert [entry["Operation"] for entry in log] == ["token", "lock", "initialize_upload", "list_jobs"]
    assert log[1]["JobId"] == job_id and log[1]["Status"] == 200
    assert set(log[0]) == {"Index", "TimeUtc", "Method", "Path", "Operation", "Status", "DurationMs", "JobId"}
    text = str(log)
    sas_signature = re.search(r"sig=([^&]+)", ticket["Uri"]).group(1)
    for secret in (assertion, token, lock_token, sas_signature):
        assert secret not in text
    assert "types=thumbnail" in log[3]["Path"] and "access_token=REDACTED" in log[3]["Path"]
    assert stack.sim.requests(since=2)[0]["Index"] == 2
