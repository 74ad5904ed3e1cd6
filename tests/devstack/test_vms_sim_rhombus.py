"""Rhombus simulator: API-key auth, POST + JSON with 200-and-error:true failures, snapshots, clips."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
import requests

from tests.devstack.vms_conftest import camera_with, hour_floor, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]


def ms(moment):
    return int(moment.timestamp() * 1000)


@pytest.fixture
def gapped(rhombus_sim):
    """A camera recording [0 s, 30 s) and [50 s, 80 s) of a window starting an hour before now."""
    camera_id = camera_with(rhombus_sim, Online=True, HasRecordings=True)["Id"]
    start = hour_floor(sim_now(rhombus_sim)) - timedelta(hours=1)
    rhombus_sim.set_recordings(
        camera_id,
        [(start, start + timedelta(seconds=30)), (start + timedelta(seconds=50), start + timedelta(seconds=80))],
    )
    return camera_id, start


def splice(client, camera_id, start, seconds):
    body = {"deviceUuids": [f"{camera_id}.v0"], "startTimeMillis": ms(start), "durationSec": seconds, "title": "t"}
    return client.call("/video/spliceV3", body)


def clip(client, clip_uuid):
    return client.ok("/event/getClipWithProgress", {"clipUuid": clip_uuid})["clip"]


def test_calls_without_the_api_key_headers_are_401(rhombus, rhombus_client):
    no_headers = rhombus_client.call("/camera/getMinimalCameraStateList", headers={})
    wrong_key = rhombus_client.call(
        "/camera/getMinimalCameraStateList", headers={"x-auth-scheme": "api-token", "x-auth-apikey": "nope"}
    )
    wrong_scheme = rhombus_client.call(
        "/camera/getMinimalCameraStateList", headers={"x-auth-scheme": "bearer", "x-auth-apikey": rhombus.api_key}
    )
    media = requests.get(rhombus.media_url + "/media/x/us-west-2/snapshot.jpeg", timeout=10)

    assert [r.status_code for r in (no_headers, wrong_key, wrong_scheme, media)] == [401] * 4


def test_camera_states_list_every_camera_with_status_and_position(rhombus_client, rhombus_sim):
    states = rhombus_client.ok("/camera/getMinimalCameraStateList")["cameraStates"]
    summaries = {c["Id"]: c for c in rhombus_sim.cameras()}

    assert len(states) == 12
    for state in states:
        summary = summaries[state["uuid"]]
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", state["uuid"])
        assert state["connectionStatus"] == ("GREEN" if summary["Online"] else "RED")
        assert state["mediaRegion"] == "us-west-2" and state["serialNumber"] and state["locationUuid"]
        assert (state.get("latitude") is not None) == summary["HasPosition"]
    without_position = [s for s in states if s.get("latitude") is None]
    assert {"latitude" in s for s in without_position} == {True, False}  # null for some, absent for others


def test_camera_states_handle_1200_cameras(rhombus_client, rhombus_sim):
    rhombus_sim.seed_cameras(1200)

    assert len(rhombus_client.ok("/camera/getMinimalCameraStateList")["cameraStates"]) == 1200


def test_snapshot_is_a_jpeg_and_offline_cameras_are_503(rhombus_client, rhombus_sim):
    online = camera_with(rhombus_sim, Online=True)["Id"]
    offline = camera_with(rhombus_sim, Online=False)["Id"]

    ok = rhombus_client.media(f"/media/{online}/us-west-2/snapshot.jpeg")
    unavailable = rhombus_client.media(f"/media/{offline}/us-west-2/snapshot.jpeg")
    unknown = rhombus_client.media("/media/AAAAAAAAAAAAAAAAAAAAAA/us-west-2/snapshot.jpeg")

    assert ok.status_code == 200 and ok.headers["Content-Type"] == "image/jpeg" and ok.content[:2] == b"\xff\xd8"
    assert unavailable.status_code == 503
    assert unknown.status_code == 404


def test_exact_frame_uri_gives_a_jpeg_or_an_error_in_a_200(rhombus_client, gapped):
    camera_id, start = gapped

    found = rhombus_client.ok("/video/getExactFrameUri", {"cameraUuid": camera_id, "timestampMs": ms(start) + 1234})
    in_gap = rhombus_client.call(
        "/video/getExactFrameUri", {"cameraUuid": camera_id, "timestampMs": ms(start) + 40_000}
    )
    frame = rhombus_client.media(found["frameUri"])

    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    assert in_gap.status_code == 200
    assert in_gap.json()["error"] is True and in_gap.json()["errorMsg"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"deviceUuids": ["AAAAAAAAAAAAAAAAAAAAAA.v0"], "startTimeMillis": 0, "durationSec": 60}, "not found"),
        ({"deviceUuids": ["{camera}.v0"], "startTimeMillis": 0, "durationSec": 3601}, "3600"),
        ({"deviceUuids": ["{camera}"], "startTimeMillis": 0, "durationSec": 60}, "facet"),
        ({"deviceUuids": ["{camera}.v0"], "durationSec": 60}, "startTimeMillis"),
    ],
)
def test_invalid_splice_requests_fail_with_http_200_and_error_true(rhombus_client, rhombus_sim, body, message):
    camera_id = rhombus_sim.cameras()[0]["Id"]
    body = json.loads(json.dumps(body).replace("{camera}", camera_id))

    response = rhombus_client.call("/video/spliceV3", body)

    assert response.status_code == 200
    assert response.json()["error"] is True and message in response.json()["errorMsg"]


def test_clip_progresses_on_the_clock_and_downloads_the_recorded_parts(rhombus_client, rhombus_sim, gapped):
    camera_id, start = gapped
    clip_uuid = splice(rhombus_client, camera_id, start, 80).json()["clipUuid"]

    statuses = [clip(rhombus_client, clip_uuid)]
    for _ in range(2):
        rhombus_sim.advance_clock(10.5)
        statuses.append(clip(rhombus_client, clip_uuid))
    done = statuses[-1]
    url = f"/media/metadata/{done['clipLocation']['region']}/{clip_uuid}.mp4"
    response = rhombus_client.media(url)
    ranged = rhombus_client.media(url, headers={"Range": "bytes=7000000-"})

    assert [s["status"] for s in statuses] == ["PENDING", "UPLOADING", "COMPLETE"]
    assert statuses[1]["percentComplete"] in range(1, 100) and done["percentComplete"] == 100
    assert response.status_code == 200 and response.headers["Content-Type"] == "video/mp4"
    assert len(response.content) == 60 * 250_000  # 80 s asked, 60 s recorded
    expected = rhombus_sim.stream_info(camera_id, start, start + timedelta(seconds=80), recorded_only=True)
    assert hashlib.sha256(response.content).hexdigest() == expected["Sha256"]
    first = rhombus_sim.stream_info(camera_id, start, start + timedelta(seconds=30))
    assert hashlib.sha256(response.content[: first["Size"]]).hexdigest() == first["Sha256"]
    assert rhombus_sim.stream_info_for_url(rhombus_client.rhombus.media_url + url) == expected
    assert ranged.status_code == 206 and ranged.content == response.content[7_000_000:]


def test_clip_is_not_downloadable_before_it_completes(rhombus_client, gapped):
    camera_id, start = gapped
    clip_uuid = splice(rhombus_client, camera_id, start, 80).json()["clipUuid"]

    assert rhombus_client.media(f"/media/metadata/us-west-2/{clip_uuid}.mp4").status_code == 404


def test_clip_of_a_window_without_footage_fails(rhombus_client, rhombus_sim, gapped):
    camera_id, start = gapped
    clip_uuid = splice(rhombus_client, camera_id, start + timedelta(seconds=31), 15).json()["clipUuid"]

    rhombus_sim.advance_clock(21)

    assert clip(rhombus_client, clip_uuid)["status"] == "FAILED"


def test_injected_clip_failure(rhombus_client, rhombus_sim, gapped):
    camera_id, start = gapped
    rhombus_sim.fail_exports()
    clip_uuid = splice(rhombus_client, camera_id, start, 30).json()["clipUuid"]

    rhombus_sim.advance_clock(21)

    assert clip(rhombus_client, clip_uuid)["status"] == "FAILED"


def test_deleted_clips_stop_downloading_and_leave_no_saved_clip(rhombus_client, rhombus_sim, gapped):
    camera_id, start = gapped
    clip_uuid = splice(rhombus_client, camera_id, start, 30).json()["clipUuid"]
    rhombus_sim.advance_clock(21)
    assert [c["Id"] for c in rhombus_sim.saved_clips()] == [clip_uuid]

    rhombus_client.ok("/event/deleteSavedClip", {"clipUuid": clip_uuid})

    assert rhombus_client.media(f"/media/metadata/us-west-2/{clip_uuid}.mp4").status_code == 404
    assert rhombus_sim.saved_clips() == []
    again = rhombus_client.call("/event/getClipWithProgress", {"clipUuid": clip_uuid}).json()
    assert again["error"] is True


def test_429_carries_retry_after_and_a_text_body(rhombus_client, rhombus_sim):
    rhombus_sim.inject_fault("get_camera_states", 429)
    rhombus_sim.inject_fault("splice", 429, retry_after=3)

    throttled = rhombus_client.call("/camera/getMinimalCameraStateList")
    throttled_with = rhombus_client.call("/video/spliceV3", {})

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.headers["Content-Type"].startswith("text/plain") and throttled.text
    assert throttled_with.headers["Retry-After"] == "3"
    assert rhombus_client.call("/camera/getMinimalCameraStateList").status_code == 200


def test_a_scripted_200_with_error_true(rhombus_client, rhombus_sim):
    rhombus_sim.inject_fault("get_camera_states", 200, detail="temporarily unavailable")

    response = rhombus_client.call("/camera/getMinimalCameraStateList")

    assert response.status_code == 200
    assert response.json() == {"error": True, "errorMsg": "temporarily unavailable", "warningMsg": None}


def test_request_log_keeps_no_api_key(rhombus, rhombus_client, rhombus_sim):
    rhombus_client.ok("/camera/getMinimalCameraStateList")

    log = rhombus_sim.requests()

    assert [entry["Operation"] for entry in log] == ["get_camera_states"]
    assert rhombus.api_key not in json.dumps(log)
