"""Azurite's lifecycle, the LocalStack's state files and the `python -m devstack up` command."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devstack import Azurite, AzuriteError, LocalStack

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration  # these start Azurite and the simulators themselves


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def test_missing_azurite_binary_gives_setup_hint(tmp_path):
    with pytest.raises(AzuriteError, match="make setup"):
        Azurite(executable=tmp_path / "azurite").start()


def test_stack_exposes_a_working_azurite(stack):
    service = BlobServiceClient.from_connection_string(stack.storage_connection_string)

    assert "clearance-uploads" in [c.name for c in service.list_containers()]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/devstoreaccount1", stack.blob_endpoint)
    assert f"BlobEndpoint={stack.blob_endpoint};" in stack.storage_connection_string
    prefix = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    assert stack.storage_connection_string.startswith(prefix)


def test_stack_writes_secret_state_files_and_stops_everything(tmp_path):
    state_dir = tmp_path / "state"
    with LocalStack(state_dir) as stack:
        state = json.loads((state_dir / "state.json").read_text())
        azurite_pid = stack.azurite.pid
        assert state["agent_service_url"] == stack.agent_service_url
        assert state["azurite_pid"] == azurite_pid and alive(azurite_pid)
        for secret in ("connection-file.json", "registry-file-key.pem"):
            assert stat.S_IMODE((state_dir / secret).stat().st_mode) == 0o600
        written = json.loads((state_dir / "connection-file.json").read_text())
        assert written == json.loads(stack.connection_file_json)
        assert (state_dir / "registry-file-key.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
        registry_url = stack.registry_url

    assert not (state_dir / "state.json").exists()
    assert not alive(azurite_pid)
    with pytest.raises(requests.ConnectionError):
        requests.get(registry_url + "/_sim/info", timeout=2)


def test_azurite_is_stopped_when_the_body_raises():
    with pytest.raises(RuntimeError), Azurite() as azurite:
        pid = azurite.pid
        raise RuntimeError("boom")
    assert not alive(pid)


def test_up_command_runs_until_sigterm_and_cleans_up(tmp_path):
    state_file = tmp_path / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--state-dir", str(tmp_path), "--lock-duration", "60"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not state_file.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the stack did not start in time"
            time.sleep(0.1)
        state = json.loads(state_file.read_text())
        assert requests.get(state["control_url"] + "/config", timeout=5).json()["LockDurationSeconds"] == 60

        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0
    assert "agent service" in out and "stopped." in out
    assert not state_file.exists()
    assert not alive(state["azurite_pid"])


def test_a_job_created_without_parameters_names_cameras_the_vms_simulator_has(stack):
    known = {camera["Id"]: camera for camera in stack.een.control.cameras()}
    for job_type in ("thumbnail", "mediarequest"):
        parameters = stack.sim.create_job(job_type)["Parameters"]
        ids = parameters.get("CameraIds") or [c["CameraId"] for c in parameters["Cameras"]]
        assert ids and all(known[i]["Online"] and known[i]["HasRecordings"] for i in ids)


def test_the_stack_writes_private_agent_settings_that_validate(tmp_path, capsys):
    from devstack.__main__ import write_agent_settings
    from shared.settings import AgentSettings

    with LocalStack(tmp_path) as stack:
        write_agent_settings(stack)
        path = tmp_path / "local.settings.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        values = json.loads(path.read_text())["Values"]
        settings = AgentSettings.from_env(values)
        assert settings.upload_allow_http_loopback and settings.vms.kind == "een"
    printed = capsys.readouterr().out
    assert "make agent SETTINGS=" in printed and "single-use" in printed
    assert values["EEN_CLIENT_SECRET"] not in printed
