"""Controls the drill's scenarios rely on: jobs offered to one agent, the lock history, the Registry's own
clock in its `Date` header, removing one transform, and a VMS camera's own bitrate and export duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests

from tests.devstack.vms_conftest import een_time, hour_floor, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]


def test_a_job_offered_to_one_agent_is_listed_and_lockable_by_that_agent_only(agent, other_agent, stack):
    mine = stack.sim.create_job("discovery", agent_id=agent.agent_id)["Id"]
    everyone = stack.sim.create_job("discovery")["Id"]

    assert {job["Id"] for job in other_agent.jobs().json()} == {everyone}
    assert other_agent.lock(mine).status_code == 409
    assert {job["Id"] for job in agent.jobs().json()} == {mine, everyone}
    assert agent.lock(mine).status_code == 200


def test_the_lock_history_says_how_each_lock_ended(agent, stack):
    job = stack.sim.create_job("discovery")["Id"]
    first = agent.lock_token(job)
    assert agent.release(job, first).status_code == 204
    second = agent.lock_token(job)
    stack.sim.expire_lock(job)
    third = agent.lock_token(job)
    assert agent.complete(job, third, "Completed").status_code == 204

    history = stack.sim.lock_history(job)

    assert [(lock["LockToken"], lock["Ending"]) for lock in history] == [
        (first, "released"),
        (second, "expired"),
        (third, "completed"),
    ]
    assert all(lock["AgentId"] == agent.agent_id and lock["EndedHostUtc"] for lock in history)


def test_a_lock_still_held_has_no_ending(agent, stack):
    job = stack.sim.create_job("discovery")["Id"]
    agent.lock_token(job)

    (lock,) = stack.sim.lock_history(job)

    assert lock["Ending"] is None and lock["EndedUtc"] is None


def test_answers_are_dated_by_the_simulators_clock(agent, stack):
    stack.sim.set_clock_offset(90)
    try:
        response = agent.jobs()
        dated = parsedate_to_datetime(response.headers["Date"])
        ahead = (dated - datetime.now(UTC)).total_seconds()
        assert 85 <= ahead <= 95
        assert stack.sim.clock()["OffsetSeconds"] == 90
    finally:
        stack.sim.set_clock_offset(0)


def test_one_transform_can_be_removed_and_the_others_stay(stack):
    kept = stack.sim.add_transform("lock", status=503, processed=False)
    removed = stack.sim.add_transform("renew", status=503, processed=False)

    stack.sim.remove_transform(removed["Id"])

    assert [t["Id"] for t in stack.sim.transforms()] == [kept["Id"]]
    response = requests.delete(f"{stack.registry_url}/_sim/transforms/{removed['Id']}", timeout=10)
    assert response.status_code == 404


def test_a_cameras_own_bitrate_changes_only_its_footage(een_sim):
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=2)
    end = start + timedelta(minutes=10)
    fast = een_sim.add_camera(Name="fast", Recordings=[[een_time(start), een_time(end)]])["Id"]
    plain = een_sim.add_camera(Name="plain", Recordings=[[een_time(start), een_time(end)]])["Id"]
    before = een_sim.stream_info(fast, start, end)["Size"]

    een_sim.set_camera_media(fast, bitrate_kbps=4 * een_sim.config()["BitrateKbps"])

    assert een_sim.stream_info(fast, start, end)["Size"] == pytest.approx(4 * before, rel=0.01)
    assert een_sim.stream_info(plain, start, end)["Size"] == pytest.approx(before, rel=0.01)


def test_a_cameras_own_export_duration_sets_how_long_its_exports_take(een_sim, een_client):
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=2)
    end = start + timedelta(minutes=1)
    camera = een_sim.add_camera(Name="slow", Recordings=[[een_time(start), een_time(end)]])["Id"]
    een_sim.set_camera_media(camera, export_seconds=600)
    body = {
        "deviceId": camera,
        "type": "video",
        "period": {"startTimestamp": een_time(start), "endTimestamp": een_time(end)},
        "info": {"name": "slow", "directory": "/exports"},
    }
    job_id = een_client.post("/exports", body).json()["id"]

    een_sim.advance_clock(een_sim.config()["ExportDurationSeconds"] + 1)

    assert een_client.get(f"/jobs/{job_id}").json()["state"] in ("pending", "started")
    een_sim.advance_clock(600)
    assert een_client.get(f"/jobs/{job_id}").json()["state"] == "success"


def test_camera_media_settings_are_checked(een_sim):
    camera = een_sim.add_camera(Name="checked")["Id"]
    url = f"{een_sim.base_url}/_sim/cameras/{camera}/media"

    assert requests.put(url, json={"BitrateKbps": -1}, timeout=10).status_code == 400
    assert requests.put(url, json={"ExportDurationSeconds": "slow"}, timeout=10).status_code == 400
    assert requests.put(f"{een_sim.base_url}/_sim/cameras/nope/media", json={}, timeout=10).status_code == 404
