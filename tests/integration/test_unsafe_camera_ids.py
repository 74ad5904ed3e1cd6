"""Camera ids are data, not paths: any id gives a safe, unique file name, and no naming problem can stop
a job halfway (cameras with chosen ids in the VMS simulator; the Registry simulator refuses unsafe names)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devstack.agent_env import agent_settings
from shared.agent.wiring.runtime import build_agent
from shared.settings import AgentSettings
from tests.integration.agent_helpers import history, run_job

pytestmark = pytest.mark.integration

UNSAFE_IDS = ["../x", "cam/1", "cam\\1", "tab\there", "caméra-ü-📷", "x" * 300, "cam_1"]


def test_cameras_with_unsafe_ids_are_delivered_with_safe_unique_names(stack):
    vms = stack.een.control
    vms.reset()
    vms.configure(BitrateKbps=32)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(minutes=10)
    recordings = [[start.isoformat(), end.isoformat()]]
    for camera_id in UNSAFE_IDS:
        vms.add_camera(Id=camera_id, Name="unsafe", Recordings=recordings)
    agent = build_agent(AgentSettings.from_env(agent_settings(stack, unique=True)))
    windows = [{"CameraId": c, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()} for c in UNSAFE_IDS]
    media = stack.sim.create_job("mediarequest", {"Cameras": windows})["Id"]
    thumbs = stack.sim.create_job("thumbnail", {"CameraIds": UNSAFE_IDS})["Id"]
    run_job(agent)
    for job_id in (media, thumbs):
        seen = stack.sim.job(job_id)
        assert seen["State"] == "Completed", seen.get("CompletionMessage") or seen.get("CancelReason")
        names = [f["FileName"] for f in seen["Files"]]
        assert len(names) == len(set(names)) == len(UNSAFE_IDS)
        assert all(f["Verification"]["Ok"] for f in seen["Files"])
        assert all("/" not in n and "\\" not in n and len(n) <= 120 for n in names)
        reported = {f["CompletionFields"]["CameraId"] for f in seen["Files"]}
        assert reported == set(UNSAFE_IDS)  # reported with the real ids, named with safe ones
        assert history(stack, job_id, "initialize_upload", 400) == 0
