"""`python -m shared.ops` against the local stack: what an operator reads, a preflight, and releasing a stuck job.

The role an operator is granted to read (Storage Table Data Reader) is simulated by a table client whose every
write answers 403, as Azure Storage does for that role: reading must still work, and never try to write.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from devstack import ops as devstack_ops
from devstack.agent_env import agent_settings
from shared import ops
from shared.agent.wiring.runtime import build_agent
from shared.ops import access
from shared.ops.errors import Exit
from shared.settings import AgentSettings
from tests.integration.agent_helpers import poll_once, recorded_camera, run_job, window

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(stack, tmp_path, monkeypatch):
    stack.een.control.reset()
    monkeypatch.chdir(tmp_path)  # no .devstack/ here: storage only as each test gives it
    for name in [n for n in os.environ if n.startswith("AzureWebJobsStorage")]:
        monkeypatch.delenv(name)
    settings = agent_settings(stack, unique=True)
    agent = build_agent(AgentSettings.from_env(settings))
    agent.services.wait_in_run = 1.0
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    return stack, agent, settings, path


def run_ops(*argv: str, answer: str = "n", local: access.LocalStorage | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = ops.main(list(argv), out=out, err=err, ask=lambda _prompt: answer, local=local)
    return code, out.getvalue(), err.getvalue()


class ReaderTable:
    """A table client with Storage Table Data Reader's rights: reads pass, every write is refused (403)."""

    WRITES = ("create_table", "create_entity", "update_entity", "upsert_entity", "delete_entity", "submit_transaction")

    def __init__(self, real: Any) -> None:
        self._real = real
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in self.WRITES:
            return lambda *args, **kwargs: self._refuse(name)
        return getattr(self._real, name)

    def _refuse(self, name: str) -> None:
        self.refused.append(name)
        error = HttpResponseError(
            message="This request is not authorized to perform this operation using this permission."
        )
        error.status_code, error.reason = 403, "Forbidden"
        error.error_code = "AuthorizationPermissionMismatch"  # type: ignore[attr-defined]
        raise error


@pytest.fixture
def reader_role(monkeypatch):
    tables: list[ReaderTable] = []
    real_open = access.open_table

    def open_as_reader(storage, name):
        table = ReaderTable(real_open(storage, name))
        tables.append(table)
        return table

    monkeypatch.setattr(access, "open_table", open_as_reader)
    return tables


def test_status_and_show_tell_what_each_job_did_and_never_print_a_secret(setup):
    stack, agent, settings, path = setup
    camera, start, end = recorded_camera(stack.een.control, minutes=20)
    media = stack.sim.create_job("mediarequest", {"Cameras": [window(camera, start, end)]})["Id"]
    thumbs = stack.sim.create_job("thumbnail", {"CameraIds": [camera, "ffff0000"]})["Id"]
    run_job(agent)
    code, text, err = run_ops("--settings", str(path), "status")
    assert code == 0 and "storage: the storage account of AzureWebJobsStorage" in err
    assert "Completed: 1" in text and "Canceled: 1" in text
    media_line = next(line for line in text.splitlines() if line.startswith(media))
    assert "mediarequest" in media_line and "2/2" in media_line  # two work items, both done
    thumbs_line = next(line for line in text.splitlines() if line.startswith(thumbs))
    assert "ffff0000" in thumbs_line  # the cancel reason
    code, text, _ = run_ops("show", media, "--settings", str(path))  # options after the command work too
    assert code == 0 and "Plan " in text and "Delivered" in text and ".mp4" in text and "lock expires" in text
    lock_token = agent.services.records.get(media).lock_token
    for secret in (lock_token, settings["CLEARANCE_CONNECTION_FILE"][:40], "AccountKey"):
        assert secret not in text


def test_json_and_filters_by_state_and_age(setup):
    stack, agent, _, path = setup
    camera, *_ = recorded_camera(stack.een.control)
    done = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    run_job(agent)
    waiting = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)  # locked, never run
    code, text, _ = run_ops("--settings", str(path), "status", "--json")
    jobs = {job["job_id"]: job for job in json.loads(text)}
    assert code == 0 and jobs[done]["state"] == "Completed" and jobs[done]["files_delivered"] == 1
    assert jobs[waiting]["state"] == "Queued" and jobs[waiting]["items_total"] == 0
    code, text, _ = run_ops("--settings", str(path), "status", "--json", "--state", "queued,processing")
    assert [job["job_id"] for job in json.loads(text)] == [waiting]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, text, _ = run_ops("--settings", str(path), "status", "--since", future)
    assert code == 0 and text.strip() == "No jobs match."
    code, text, _ = run_ops("--settings", str(path), "status", "--since", "1h", "--json")
    assert {job["job_id"] for job in json.loads(text)} == {done, waiting}
    code, text, _ = run_ops("--settings", str(path), "show", done, "--json")
    document = json.loads(text)
    assert document["plan"]["items_delivered"] == 1 and document["items"][0]["files"][0]["file_id"]
    code, _, err = run_ops("--settings", str(path), "status", "--state", "Stuck")
    assert code == Exit.USAGE and err.count("\n") == 2 and "unknown state Stuck" in err  # storage line + error


def test_a_reader_role_reads_everything_and_never_writes(setup, reader_role):
    stack, agent, _, path = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    run_job(agent)
    for argv in (("status",), ("status", "--json"), ("show", job), ("show", job, "--json")):
        code, text, err = run_ops("--settings", str(path), *argv)
        assert code == 0, err
        assert job in text
    assert [t.refused for t in reader_role] == [[]] * len(reader_role)  # no write was even tried
    # a table that does not exist is reported, not created
    code, _, err = run_ops("--settings", str(path), "--table", "nosuchtable", "status")
    assert code == Exit.NOT_FOUND and "no table nosuchtable" in err and "Traceback" not in err
    assert reader_role[-1].refused == []


def test_release_with_a_reader_role_says_which_role_is_missing_in_one_line(setup, reader_role):
    stack, agent, _, path = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)
    code, text, err = run_ops("--settings", str(path), "release", job, answer="y")
    assert code == Exit.FORBIDDEN
    assert "Storage Table Data Contributor" in text  # said before asking
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "Storage Table Data Contributor" in error_lines[0]
    assert "the Registry released it" in error_lines[0] and "Traceback" not in err
    assert stack.sim.job(job)["State"] == "Available"


def test_release_shows_the_lock_and_progress_then_asks_then_releases(setup):
    stack, agent, _, path = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)  # locked and queued, never processed: stuck
    code, text, _ = run_ops("--settings", str(path), "release", job, answer="n")
    assert code == Exit.DECLINED and "Not released" in text
    for shown in ("lock expires", "(in ", "last progress", "0/0 items", "Clearance connection file"):
        assert shown in text
    assert stack.sim.job(job)["State"] == "Locked"
    code, text, _ = run_ops("--settings", str(path), "release", job, answer="y")
    assert code == 0 and "Released job" in text
    assert stack.sim.job(job)["State"] == "Available"
    assert agent.services.records.get(job).state == "Released"
    code, _, err = run_ops("--settings", str(path), "release", job, answer="y")
    assert code == Exit.NOT_FOUND and "already ended as Released" in err


def test_release_without_the_connection_file_says_what_it_needs_before_asking(setup, tmp_path):
    stack, agent, settings, _ = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)
    storage_only = tmp_path / "storage.json"
    values = {k: v for k, v in settings.items() if not k.startswith("CLEARANCE_CONNECTION")}
    storage_only.write_text(json.dumps({"Values": values}))
    asked: list[str] = []
    err = io.StringIO()
    code = ops.main(["--settings", str(storage_only), "release", job], out=io.StringIO(), err=err, ask=asked.append)
    assert code == Exit.USAGE and not asked
    assert "release needs the Clearance connection file" in err.getvalue()


def test_errors_are_one_line_on_stderr_with_distinct_codes(setup):
    _, _, _, path = setup
    code, out, err = run_ops("--settings", str(path), "show", "no-such-job")
    assert code == Exit.NOT_FOUND and out == "" and "error: no job no-such-job" in err
    code, _, err = run_ops("status")
    assert code == Exit.USAGE and "no storage given" in err
    code, _, err = run_ops("--settings", "missing.json", "status")
    assert code == Exit.USAGE and "cannot read the Values of missing.json" in err


def test_ops_finds_the_azurite_make_agent_runs(setup, tmp_path):
    stack, agent, settings, _ = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)
    # the user's settings say "local storage"; `make agent` started Azurite on ports of its own
    local = tmp_path / "local.settings.json"
    local.write_text(json.dumps({"Values": {**settings, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}}))
    code, _, err = run_ops("--settings", str(local), "status", local=devstack_ops.LOCAL)
    assert code == Exit.UNREACHABLE and "no local Azurite is running" in err and "make agent" in err
    state = tmp_path / devstack_ops.AGENT_STORAGE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"storage_connection_string": stack.storage_connection_string, "pid": os.getpid()}))
    code, text, err = run_ops("--settings", str(local), "status", local=devstack_ops.LOCAL)
    assert code == 0 and job in text and "`make agent`" in err
    # the deployed package knows no local stack: `python -m shared.ops` alone does not look for it
    code, _, err = run_ops("--settings", str(local), "status")
    assert code == Exit.UNREACHABLE and "make agent" not in err


def test_check_reports_one_line_per_check_and_fails_on_a_bad_credential(setup, tmp_path):
    _, agent, settings, path = setup
    code, text, _ = run_ops("--settings", str(path), "check")
    assert code == Exit.CHECK_FAILED and "FAIL  storage   no table clearancelocks" in text  # nothing deployed yet
    agent.services.records.ensure_table()  # as the deployment creates them
    agent.queue.create_queue()
    code, text, _ = run_ops("--settings", str(path), "check")
    lines = text.splitlines()
    assert code == 0, text
    assert [line.split()[1] for line in lines] == ["Key", "settings", "storage", "Registry", "VMS"]
    assert all(line.startswith("ok") for line in lines)
    assert "camera(s)" in lines[-1] and "probe written to and deleted" in lines[2]
    bad = tmp_path / "bad.json"
    # a fresh token table: the grant the first check stored there would be reused, whatever the secret
    wrong = {"EEN_CLIENT_SECRET": "wrong-secret", "EEN_TOKEN_TABLE": settings["EEN_TOKEN_TABLE"] + "x"}
    bad.write_text(json.dumps({"Values": {**settings, **wrong}}))
    code, text, _ = run_ops("--settings", str(bad), "check")
    assert code == Exit.CHECK_FAILED
    vms_line = text.splitlines()[-1]
    assert vms_line.startswith("FAIL") and "VMS" in vms_line and "wrong-secret" not in text


def test_without_the_connection_file_status_works_the_token_stays_sealed_and_release_asks_for_the_file(setup, tmp_path):
    stack, agent, settings, _ = setup
    camera, *_ = recorded_camera(stack.een.control)
    job = stack.sim.create_job("thumbnail", {"CameraIds": [camera]})["Id"]
    poll_once(agent)  # locked: the record holds the lock token, sealed
    token = stack.sim.job(job)["Lock"]["LockToken"]
    reader_only = {k: v for k, v in settings.items() if not k.startswith("CLEARANCE_CONNECTION_FILE")}
    path = tmp_path / "reader.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": reader_only}))
    code, out, err = run_ops("--settings", str(path), "status")
    assert code == 0 and job in out and "lock tokens stay sealed" in err and token not in out + err
    code, out, err = run_ops("--settings", str(path), "release", job, "--yes")
    assert code == Exit.USAGE and "release needs the Clearance connection file" in err
    assert stack.sim.job(job)["State"] == "Locked"
