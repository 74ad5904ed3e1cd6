"""poll_jobs when something fails after a lock may have been taken: the job is released in the same poll,
the reason is recorded, and the other jobs of the poll are still locked and queued.

Every fault is real: the Registry simulator reshapes or holds its answers, storage refuses what it
would refuse in Azure. Nothing of the agent is patched.
"""

from __future__ import annotations

import logging
import threading

import pytest
from azure.data.tables import TableServiceClient

from devstack.agent_env import agent_settings
from shared.agent.locks.poller import poll
from shared.agent.wiring.runtime import build_agent
from shared.agent.work.messages import decode_message
from shared.settings import AgentSettings
from shared.storage import queue_client


@pytest.fixture(autouse=True)
def default_durations(stack):
    """Other tests shorten locks and tokens (a reset keeps the configuration): these need the defaults."""
    stack.sim.configure(lock_duration_seconds=300, token_lifetime_seconds=3600, sas_ttl_seconds=3600)


@pytest.fixture
def agent(stack):
    return build_agent(AgentSettings.from_env(agent_settings(stack, unique=True)))


def thumbnail_jobs(stack, count: int, cameras: list[str] | None = None) -> list[str]:
    """Jobs created one after another, so the poll takes them in this order (oldest first)."""
    parameters = {"CameraIds": cameras or ["camera-1"]}
    return [stack.sim.create_job("thumbnail", parameters)["Id"] for _ in range(count)]


def poll_once(agent):
    return poll(agent.services, max_in_flight=agent.settings.max_in_flight_jobs)


def queued(agent) -> list[str]:
    return sorted(decode_message(m.content).job_id for m in agent.queue.peek_messages(max_messages=32))


def calls(stack, job_id: str) -> list[tuple[str, int | None]]:
    return [(h["Operation"], h["Status"]) for h in stack.sim.job(job_id)["History"]]


def errors_about(caplog, job_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and job_id in r.getMessage()]


@pytest.mark.parametrize(
    "broken",
    [
        {"body": "Html"},
        {"body": "Truncated"},
        {"body": "Empty"},
        {"drop": ["LockToken"]},
        {"rename": {"LockExpirationUtc": "Expiry"}},
        {"status": 200, "body": "Html", "content_type": "application/json"},
    ],
    ids=["html", "truncated", "empty", "no-token", "renamed-expiry", "html-as-json"],
)
def test_an_unreadable_lock_answer_releases_that_job_and_the_others_are_queued(stack, agent, caplog, broken):
    first, bad, last = thumbnail_jobs(stack, 3)
    stack.sim.add_transform("lock", job_id=bad, **broken)

    result = poll_once(agent)

    assert result.locked == [first, last] and queued(agent) == sorted([first, last])
    assert result.released == [bad] and "lock" in result.problems[bad]
    assert stack.sim.job(bad)["State"] == "Available"
    assert calls(stack, bad) == [("lock", 200), ("lock", 200), ("release", 204)]  # the token asked for again
    assert agent.services.records.get(bad) is None
    (line,) = errors_about(caplog, bad)
    assert "unusable" in line and "released it" in line


def test_when_the_lock_token_cannot_be_had_back_the_job_is_reported_and_the_poll_goes_on(stack, agent, caplog):
    first, bad, last = thumbnail_jobs(stack, 3)
    stack.sim.add_transform("lock", job_id=bad, drop=["LockToken"], every=True)

    result = poll_once(agent)

    assert result.locked == [first, last] and queued(agent) == sorted([first, last])
    assert bad in result.problems and result.released == []
    assert stack.sim.job(bad)["State"] == "Locked"  # nothing more can be done: its lock expires on its own
    (line,) = errors_about(caplog, bad)
    assert "expires on its own" in line


def test_a_lock_answer_cut_short_is_retried_into_the_same_lock(stack, agent):
    (job,) = thumbnail_jobs(stack, 1)
    stack.sim.add_transform("lock", job_id=job, body="CutOff")

    result = poll_once(agent)

    assert result.locked == [job] and queued(agent) == [job]
    token = agent.services.records.get(job).lock_token
    assert stack.sim.job(job)["Lock"]["LockToken"] == token
    assert calls(stack, job) == [("lock", 200), ("lock", 200)]


def test_a_lock_record_that_cannot_be_written_releases_the_job_and_the_next_job_is_queued(stack, agent, caplog):
    bad, good = thumbnail_jobs(stack, 2)
    agent.services.records.ensure_table()
    tables = TableServiceClient.from_connection_string(stack.storage_connection_string)
    table = agent.settings.locks_table
    lock_held = stack.sim.add_step_fault("lock", "Hold", job_id=bad)
    release_held = stack.sim.add_step_fault("release", "Hold", job_id=bad)
    outcome = []
    polling = threading.Thread(target=lambda: outcome.append(poll_once(agent)))
    polling.start()

    stack.sim.wait_for_hold(fault_id=lock_held["Id"])
    tables.delete_table(table)  # storage loses the table while the lock call is in flight
    stack.sim.release_holds()
    stack.sim.wait_for_hold(fault_id=release_held["Id"])  # the record failed: the agent is releasing the job
    tables.create_table(table)
    stack.sim.release_holds()
    polling.join(timeout=60)

    (result,) = outcome
    assert result.released == [bad] and "lock record write failed" in result.problems[bad]
    assert result.locked == [good] and queued(agent) == [good]
    assert stack.sim.job(bad)["State"] == "Available"
    assert agent.services.records.get(good).state == "Queued"
    (line,) = errors_about(caplog, bad)
    assert "released it" in line


def test_a_job_too_big_for_a_queue_message_is_locked_and_queued_by_its_id(stack, agent):
    """Messages carry ids only: a 2,500-camera job (~80 KB of parameters, over a queue message's 64 KiB)
    is queued like any other; what it asked for is kept in Table Storage, once."""
    cameras = [f"camera-{n:04d}-{'x' * 24}" for n in range(2500)]
    (big,) = thumbnail_jobs(stack, 1, cameras)

    result = poll_once(agent)

    assert result.locked == [big] and result.released == [] and queued(agent) == [big]
    (message,) = agent.queue.peek_messages(max_messages=1)
    assert len(message.content) < 200
    record = agent.services.records.get(big)
    assert agent.services.ledger.get_job(big, record.generation).parameters == {"CameraIds": cameras}


def test_a_job_that_cannot_be_enqueued_is_released_and_its_record_says_why(stack, agent, caplog):
    (job,) = thumbnail_jobs(stack, 1)
    settings = agent.settings
    agent.services.queue = queue_client(settings.storage, "Not_A_Valid_Queue")  # storage answers 400

    result = poll_once(agent)

    assert result.released == [job] and result.locked == []
    assert stack.sim.job(job)["State"] == "Available"
    record = agent.services.records.get(job)
    assert record.state == "Released"
    assert "enqueue failed" in record.last_error and "released it" in record.last_error
    (line,) = errors_about(caplog, job)
    assert "enqueue failed" in line


def test_a_job_another_agent_locked_first_or_that_is_gone_is_skipped_and_the_poll_goes_on(stack, agent, caplog):
    first, taken, gone, last = thumbnail_jobs(stack, 4)
    stack.sim.add_step_fault("lock", "Status", job_id=taken, status=409)  # another agent locked it first
    stack.sim.add_step_fault("lock", "Status", job_id=gone, status=410)  # withdrawn since it was listed

    with caplog.at_level(logging.INFO):
        result = poll_once(agent)

    assert result.locked == [first, last] and queued(agent) == sorted([first, last])
    assert result.skipped == [taken, gone] and result.released == [] and result.problems == {}
    assert calls(stack, taken) == [("lock", 409)] and calls(stack, gone)[-1] == ("lock", 410)  # never released
    assert agent.services.records.get(taken) is None and agent.services.records.get(gone) is None
    skipped = [r.getMessage() for r in caplog.records if "not taken" in r.getMessage()]
    assert any(taken in line and "LockConflict" in line for line in skipped)
    assert any(gone in line and "JobGone" in line for line in skipped)


@pytest.mark.parametrize(
    ("release_fault", "said"),
    [
        ({"action": "Status", "status": 400}, "releasing it failed too"),
        ({"action": "LoseLock"}, "it was already no longer ours"),
    ],
    ids=["release-refused", "lock-already-gone"],
)
def test_a_lock_record_that_cannot_be_written_and_a_release_that_fails_are_both_reported(
    stack, agent, caplog, release_fault, said
):
    (bad,) = thumbnail_jobs(stack, 1)
    agent.services.records.ensure_table()
    tables = TableServiceClient.from_connection_string(stack.storage_connection_string)
    lock_held = stack.sim.add_step_fault("lock", "Hold", job_id=bad)
    stack.sim.add_step_fault("release", release_fault.pop("action"), job_id=bad, **release_fault)
    outcome = []
    polling = threading.Thread(target=lambda: outcome.append(poll_once(agent)))
    polling.start()

    stack.sim.wait_for_hold(fault_id=lock_held["Id"])
    tables.delete_table(agent.settings.locks_table)  # storage loses the table while the lock call is in flight
    stack.sim.release_holds()
    polling.join(timeout=60)

    (result,) = outcome
    assert "lock record write failed" in result.problems[bad] and result.released == [] and result.locked == []
    assert [operation for operation, _ in calls(stack, bad) if operation != "lock_lost"] == ["lock", "release"]
    assert stack.sim.job(bad)["State"] == "Locked"  # by us, until it expires; or by the agent that took it
    (line,) = errors_about(caplog, bad)
    assert said in line and "no lock record" in line  # nothing in storage could take the reason
