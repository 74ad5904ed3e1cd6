"""Response transforms: any Registry answer reshaped the way a broken server or proxy would, on a chosen call."""

from __future__ import annotations

import pytest
import requests

from devstack import LocalStack
from devstack.registry_sim import SimulatorControlError


def new_job(stack: LocalStack, job_type: str = "mediarequest") -> str:
    return stack.sim.create_jobs(job_type)[0]["Id"]


def test_a_lock_answer_with_renamed_and_dropped_fields_once_then_the_same_lock_intact(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_transform("lock", rename={"LockToken": "Token"}, drop=["LockExpirationUtc"])

    broken = agent.lock(job_id)
    again = agent.lock(job_id)

    assert broken.status_code == 200
    assert set(broken.json()) == {"JobId", "Token"}
    assert again.json()["LockToken"] == broken.json()["Token"]  # the lock was taken; only its answer changed
    assert "LockExpirationUtc" in again.json()
    detail = stack.sim.job(job_id)["History"][0]["Detail"]
    assert "renamed LockToken → Token (1)" in detail and "dropped LockExpirationUtc (1)" in detail


def test_field_paths_reach_any_depth_every_list_element_or_one_element(agent, stack):
    jobs = stack.sim.create_jobs("mediarequest", count=2)
    stack.sim.add_transform(
        "list_jobs", drop=["Parameters.Cameras.CameraId", "**.EndTimeUtc"], rename={"1.Type": "Kind"}
    )

    listed = agent.jobs().json()

    assert [job["Id"] for job in listed] == [job["Id"] for job in jobs]
    cameras = [camera for job in listed for camera in job["Parameters"]["Cameras"]]
    assert cameras and all(set(camera) == {"StartTimeUtc"} for camera in cameras)
    assert listed[0]["Type"] == "mediarequest" and "Type" not in listed[1] and listed[1]["Kind"] == "mediarequest"


def test_the_nth_call_only(agent, stack):
    new_job(stack)
    stack.sim.add_transform("list_jobs", nth=2, body="Empty")

    first, second, third = agent.jobs(), agent.jobs(), agent.jobs()

    assert len(first.json()) == len(third.json()) == 1
    assert second.status_code == 200 and second.content == b""


def test_every_call_until_cleared_and_only_for_the_chosen_job(agent, stack):
    chosen, other = new_job(stack), new_job(stack)
    stack.sim.add_transform("lock", job_id=chosen, every=True, drop=["LockToken"])

    assert "LockToken" in agent.lock(other).json()
    assert ["LockToken" in agent.lock(chosen).json() for _ in range(3)] == [False] * 3
    stack.sim.clear_transforms()
    assert "LockToken" in agent.lock(chosen).json()


def test_an_html_page_instead_of_json(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_transform("lock", body="Html", status=502)

    response = agent.lock(job_id)

    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_a_truncated_body_is_short_with_a_matching_content_length(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_transform("lock", body="Truncated", truncate_at=20)

    response = agent.lock(job_id)

    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert len(response.content) == int(response.headers["Content-Length"]) == 20
    assert response.content == agent.lock(job_id).content[:20]
    with pytest.raises(ValueError):
        response.json()


def test_a_body_cut_off_mid_way_closes_the_connection_before_the_declared_length(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_transform("lock", body="CutOff")

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        agent.lock(job_id)

    assert stack.sim.job(job_id)["State"] == "Locked"  # processed; only the answer was lost


@pytest.mark.parametrize("value", ["-5", "NaN", "inf", "abc", "99999999999", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_any_header_value_with_a_status_and_the_call_not_processed(agent, stack, value):
    job_id = new_job(stack)
    stack.sim.add_transform("lock", status=503, processed=False, headers={"Retry-After": value})

    response = agent.lock(job_id)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == value
    assert response.headers["Content-Type"] == "application/problem+json"
    assert stack.sim.job(job_id)["State"] == "Available"  # not processed


def test_a_header_can_be_removed_and_the_status_changed_on_a_processed_call(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.add_transform("release", status=500, headers={"Content-Type": None})

    response = agent.release(job_id, token)

    assert response.status_code == 500 and "Content-Type" not in response.headers
    assert stack.sim.job(job_id)["State"] == "Available"  # processed: only the answer says otherwise


def test_the_token_endpoint_can_be_transformed(agent, stack):
    stack.sim.add_transform("token", drop=["access_token"])

    response = agent.request_token()

    assert response.status_code == 200 and "access_token" not in response.json()
    assert "access_token" in agent.request_token().json()


def test_a_call_answered_by_a_transform_is_in_the_request_log_with_the_status_sent(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_transform("lock", status=418)

    agent.lock(job_id)

    assert [(e["Operation"], e["Status"]) for e in stack.sim.requests() if e["Operation"] == "lock"] == [("lock", 418)]
    assert stack.sim.transforms()[0]["Fired"] == 1 and stack.sim.transforms()[0]["Exhausted"] is True


@pytest.mark.parametrize(
    "spec",
    [
        {"Operation": "no_such_route"},
        {"Operation": "lock", "Drop": ["a..b"]},
        {"Operation": "lock", "Rename": {"**": "x"}},
        {"Operation": "lock", "Processed": False},
        {"Operation": "lock", "Headers": {"Retry-After": "1\r\nX-Injected: yes"}},
        {"Operation": "lock", "Headers": {"Content-Length": "5"}},
        {"Operation": "lock", "Count": 2, "Every": True},
        {"Operation": "lock", "Nth": 0},
        {"Operation": "lock", "Body": "Xml"},
    ],
)
def test_malformed_transforms_are_refused(stack, spec):
    with pytest.raises(SimulatorControlError, match="400"):
        stack.sim._call("POST", "/transforms", spec)
