"""A lock lost at an awkward moment commits and completes nothing after it — driven by the Registry
simulator's step faults (the lock is taken by another agent at a chosen storage or Registry step)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.agent_env import agent_settings
from shared.agent.wiring.runtime import build_agent
from shared.settings import AgentSettings
from tests.integration.agent_helpers import drain, history, poll_once, recorded_camera, window

pytestmark = pytest.mark.integration

COMMITS = {"PutBlockList", "PutBlob"}


@pytest.fixture
def agent(stack):
    stack.een.control.reset()
    stack.een.control.configure(BitrateKbps=64)  # 10 minutes = 4.8 MB: five 1 MiB blocks
    env = agent_settings(stack, unique=True, UPLOAD_BLOCK_MIB="1")
    built = build_agent(AgentSettings.from_env(env))
    built.services.retry_delay = 0.2
    yield built
    stack.sim.clear_faults()


def one_file_job(stack, agent, minutes: float = 10) -> str:
    camera, start, _ = recorded_camera(stack.een.control, minutes=30)
    job = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, start + timedelta(minutes=minutes))]})
    poll_once(agent)
    return job["Id"]


def storage_steps(stack, job_id: str) -> list[str]:
    return [r["Step"] for f in stack.sim.job(job_id)["Files"] for r in f.get("StorageRequests") or []]


def assert_nothing_committed_or_completed(stack, agent, job_id: str) -> None:
    assert not COMMITS & set(storage_steps(stack, job_id)), storage_steps(stack, job_id)
    assert not any(f["Completed"] for f in stack.sim.job(job_id)["Files"])
    assert history(stack, job_id, "complete_media", 204) == 0 and history(stack, job_id, "complete", 204) == 0
    assert agent.services.records.get(job_id).state == "Lost"


def test_a_lock_lost_after_the_last_put_block_and_before_the_commit_commits_nothing(stack, agent):
    job_id = one_file_job(stack, agent)
    stack.sim.lose_lock_after_put_block(job_id, blocks=5)
    assert "Lost" in drain(agent)
    assert "PutBlock" in storage_steps(stack, job_id)  # the upload did run, through the proxy
    assert_nothing_committed_or_completed(stack, agent, job_id)


def test_a_lock_lost_before_a_single_put_blob_commits_nothing(stack, agent):
    job_id = one_file_job(stack, agent, minutes=1)  # 480 KB: one Put Blob
    stack.sim.add_step_fault("initialize_upload", "LoseLock", job_id=job_id, after_processing=True)
    stack.sim.add_step_fault("PutBlob", "Status", job_id=job_id, status=500, count=0)  # armed: routes it via the proxy
    assert "Lost" in drain(agent)
    assert_nothing_committed_or_completed(stack, agent, job_id)


def test_a_lock_lost_right_after_the_commit_completes_neither_the_file_nor_the_job(stack, agent):
    job_id = one_file_job(stack, agent)
    stack.sim.add_step_fault("PutBlockList", "LoseLock", job_id=job_id, after_processing=True)
    assert "Lost" in drain(agent)
    assert history(stack, job_id, "complete_media", 204) == 0 and history(stack, job_id, "complete", 204) == 0
    assert agent.services.records.get(job_id).state == "Lost"


def test_a_lock_lost_after_the_last_file_leaves_the_job_uncompleted_and_it_is_done_later_under_a_new_lock(stack, agent):
    job_id = one_file_job(stack, agent)
    stack.sim.add_step_fault("complete_media", "LoseLock", job_id=job_id, after_processing=True)
    drain(agent)
    assert history(stack, job_id, "complete", 204) == 0
    assert agent.services.records.get(job_id).state == "Lost"
    stack.sim.clear_faults()
    stack.sim.advance_clock(600)  # the other agent's lock expires
    poll_once(agent)
    drain(agent)
    assert stack.sim.job(job_id)["State"] == "Completed" and history(stack, job_id, "complete", 204) == 1
