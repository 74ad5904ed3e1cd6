"""`python -m shared.ops` against the local stack: what an operator reads, and releasing a stuck job."""

from __future__ import annotations

import io
import json

import pytest

from devstack.agent_env import agent_settings
from shared import ops
from shared.agent.runtime import build_agent
from shared.settings import AgentSettings
from tests.integration.agent_helpers import poll_once, recorded_camera, run_job, window

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(stack, tmp_path):
    stack.een.control.reset()
    settings = agent_settings(stack, unique=True)
    agent = build_agent(AgentSettings.from_env(settings))
    agent.services.wait_in_run = 1.0
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    return stack, agent, settings, path


def run_ops(path, *argv, answer: str = "n") -> tuple[int, str]:
    out = io.StringIO()
    code = ops.main(["--settings", str(path), *argv], out=out, ask=lambda _prompt: answer)
    return code, out.getvalue()


def test_status_and_show_tell_what_each_job_did_and_never_print_a_secret(setup):
    stack, agent, settings, path = setup
    camera, start, end = recorded_camera(stack.een.control, minutes=20)
    media = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]
    thumbs = stack.sim.create_job("thumbnail", {"CameraIds": [camera, "ffff0000"]})["Id"]
    run_job(agent)
    code, text = run_ops(path, "status")
    assert code == 0
    assert "Completed: 1" in text and "Canceled: 1" in text
    media_line = next(line for line in text.splitlines() if line.startswith(media))
    assert "mediarequest" in media_line and "2/2" in media_line  # two work items, both done
    thumbs_line = next(line for line in text.splitlines() if line.startswith(thumbs))
    assert "ffff0000" in thumbs_line  # the cancel reason
    code, text = run_ops(path, "show", media)
    assert code == 0 and "Plan " in text and "Delivered" in text and ".mp4" in text
    lock_token = agent.services.records.get(media).lock_token
    for secret in (lock_token, settings["CLEARANCE_CONNECTION_FILE"][:40], "AccountKey"):
        assert secret not in text


def test_release_asks_first_then_releases_a_stuck_job_through_the_registry(setup):
    stack, agent, _, path = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)  # locked and queued, never processed: stuck
    code, text = run_ops(path, "release", job, answer="n")
    assert code == 1 and "Not released" in text
    assert stack.sim.job(job)["State"] == "Locked"
    code, text = run_ops(path, "release", job, answer="y")
    assert code == 0 and "Released job" in text
    assert stack.sim.job(job)["State"] == "Available"
    assert agent.services.records.get(job).state == "Released"
    code, text = run_ops(path, "release", job, answer="y")
    assert code == 2 and "already ended as Released" in text


def test_an_unknown_job_and_missing_storage_are_clear_errors(setup, tmp_path, monkeypatch):
    _, _, _, path = setup
    code, text = run_ops(path, "show", "no-such-job")
    assert code == 2 and "no job no-such-job" in text
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("AzureWebJobsStorage")]:
        monkeypatch.delenv(name)
    out = io.StringIO()
    assert ops.main(["status"], out=out) == 2
    assert "no storage given" in out.getvalue()


def test_without_the_connection_file_status_works_the_token_stays_sealed_and_release_asks_for_the_file(setup, tmp_path):
    stack, agent, settings, _ = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)  # locked: the record holds the lock token, sealed
    token = stack.sim.job(job)["Lock"]["LockToken"]
    reader_only = {k: v for k, v in settings.items() if not k.startswith("CLEARANCE_CONNECTION_FILE")}
    path = tmp_path / "reader.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": reader_only}))
    code, text = run_ops(path, "status")
    assert code == 0 and job in text and "lock tokens stay sealed" in text and token not in text
    code, text = run_ops(path, "release", job, answer="y")
    assert code == 2 and "release needs the Clearance connection file" in text
    assert stack.sim.job(job)["State"] == "Locked"
