"""Rhombus simulator: API-key auth, POST + JSON with 200-and-error:true failures, snapshots, clips."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests

from devstack.footage import FootageReader, camera_tag, read_jpeg_comment
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


def footage_of(data: bytes):
    reader = FootageReader()
    reader.feed(data)
    return reader.result()


def finished_clip(client, sim, camera_id, start, seconds) -> bytes:
    clip_uuid = splice(client, camera_id, start, seconds).json()["clipUuid"]
    sim.advance_clock(21)
    assert clip(client, clip_uuid)["status"] == "COMPLETE"
    response = client.media(f"/media/metadata/us-west-2/{clip_uuid}.mp4")
    assert response.status_code == 200
    return response.content


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


def test_clip_progresses_on_the_clock_and_splices_placeholders_over_the_gap(rhombus_client, rhombus_sim, gapped):
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

    assert [s["status"] for s in statuses] == ["INITIATING", "UPLOADING", "COMPLETE"]
    assert statuses[1]["percentComplete"] in range(1, 100) and done["percentComplete"] == 100
    assert done["byteCount"] == len(response.content) and done["uuid"] == clip_uuid
    assert response.status_code == 200 and response.headers["Content-Type"] == "video/mp4"
    assert len(response.content) == 80 * 250_000  # 80 s asked: 60 s of footage, 20 s of placeholders
    found = footage_of(response.content)
    assert (found.start_ms, found.end_ms, found.frames, found.filler_frames) == (ms(start), ms(start) + 80_000, 80, 20)
    first = rhombus_sim.stream_info(camera_id, start, start + timedelta(seconds=30))
    assert hashlib.sha256(response.content[: first["Size"]]).hexdigest() == first["Sha256"]
    whole = hashlib.sha256(response.content).hexdigest()
    assert rhombus_sim.stream_info_for_url(rhombus_client.rhombus.media_url + url)["Sha256"] == whole
    assert ranged.status_code == 206 and ranged.content == response.content[7_000_000:]


def test_clip_is_not_downloadable_before_it_completes(rhombus_client, gapped):
    camera_id, start = gapped
    clip_uuid = splice(rhombus_client, camera_id, start, 80).json()["clipUuid"]

    assert rhombus_client.media(f"/media/metadata/us-west-2/{clip_uuid}.mp4").status_code == 404


def test_a_clip_of_time_without_footage_is_all_placeholders(rhombus_client, rhombus_sim, gapped):
    camera_id, start = gapped

    data = finished_clip(rhombus_client, rhombus_sim, camera_id, start + timedelta(seconds=31), 15)

    found = footage_of(data)
    assert (found.frames, found.filler_frames) == (15, 15)
    assert "placeholders" in found.describes(camera_id, ms(start) + 31_000, ms(start) + 46_000)


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

    wrong_name = rhombus_client.call("/event/deleteSavedClip", {"clipUuid": clip_uuid}).json()
    rhombus_client.ok("/event/deleteSavedClip", {"savedClipUuid": clip_uuid})

    assert wrong_name["error"] is True and "savedClipUuid" in wrong_name["errorMsg"]  # Rhombus's request name
    assert rhombus_client.media(f"/media/metadata/us-west-2/{clip_uuid}.mp4").status_code == 404
    assert rhombus_sim.saved_clips() == [] and rhombus_sim.leftovers() == []
    again = rhombus_client.call("/event/getClipWithProgress", {"clipUuid": clip_uuid}).json()
    assert again["error"] is True
    twice = rhombus_client.call("/event/deleteSavedClip", {"savedClipUuid": clip_uuid}).json()
    assert twice["error"] is True and "not found" in twice["errorMsg"]


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
    assert response.json() == {"error": True, "errorMsg": "temporarily unavailable"}


def test_request_log_keeps_no_api_key(rhombus, rhombus_client, rhombus_sim):
    rhombus_client.ok("/camera/getMinimalCameraStateList")

    log = rhombus_sim.requests()

    assert [entry["Operation"] for entry in log] == ["get_camera_states"]
    assert rhombus.api_key not in json.dumps(log)


# -- coverage, footage kept on the camera, snapshots, chosen ids -----------------------------------------


def presence(client, camera_id, start, seconds):
    body = {"cameraUuid": camera_id, "startTimeSec": ms(start) // 1000, "durationSec": seconds}
    return client.ok("/camera/getPresenceWindows", body)["presenceWindows"]


def windows(start, *spans):
    base = ms(start) // 1000
    return [{"startSeconds": base + first, "durationSeconds": last - first} for first, last in spans]


def test_presence_windows_list_the_recorded_seconds(rhombus_client, gapped):
    camera_id, start = gapped

    found = presence(rhombus_client, camera_id, start + timedelta(seconds=10), 60)

    assert found == {"VideoCloud": windows(start, (10, 30), (50, 70)), "VideoLocal": []}


def test_a_gap_under_two_seconds_is_a_seam_with_footage_across_it(rhombus_client, rhombus_sim):
    camera_id = camera_with(rhombus_sim, Online=True, HasRecordings=True)["Id"]
    start = hour_floor(sim_now(rhombus_sim)) - timedelta(hours=1)
    rhombus_sim.set_recordings(
        camera_id,
        [
            (start, start + timedelta(seconds=10, milliseconds=500)),
            (start + timedelta(seconds=12), start + timedelta(seconds=20)),
        ],
    )

    data = finished_clip(rhombus_client, rhombus_sim, camera_id, start, 20)

    assert footage_of(data).describes(camera_id, ms(start), ms(start) + 20_000) == ""
    assert presence(rhombus_client, camera_id, start, 20)["VideoCloud"] == windows(start, (0, 20))


def test_footage_kept_on_the_camera_is_video_local_and_fetchable_only_while_online(rhombus_client, rhombus_sim):
    start = hour_floor(sim_now(rhombus_sim)) - timedelta(hours=1)
    span = [[start.isoformat(), (start + timedelta(seconds=30)).isoformat()]]
    local = [[(start + timedelta(seconds=10)).isoformat(), (start + timedelta(seconds=20)).isoformat()]]
    camera_id = rhombus_sim.add_camera(Name="Edge", Recordings=span, LocalOnly=local)["Id"]

    found = presence(rhombus_client, camera_id, start, 30)
    online = footage_of(finished_clip(rhombus_client, rhombus_sim, camera_id, start, 30))
    rhombus_sim.set_online(camera_id, False)
    offline = footage_of(finished_clip(rhombus_client, rhombus_sim, camera_id, start, 30))

    assert found == {"VideoCloud": windows(start, (0, 10), (20, 30)), "VideoLocal": windows(start, (10, 20))}
    assert online.describes(camera_id, ms(start), ms(start) + 30_000) == ""
    assert offline.filler_frames == 10  # the camera's own footage cannot be fetched while it is offline
    assert presence(rhombus_client, camera_id, start, 30) == found


def test_a_live_snapshot_names_its_camera_and_the_second_in_its_date_header(rhombus_client, rhombus_sim):
    first, second = [c["Id"] for c in rhombus_sim.cameras() if c["Online"]][:2]

    one = rhombus_client.media(f"/media/{first}/us-west-2/snapshot.jpeg")
    other = rhombus_client.media(f"/media/{second}/us-west-2/snapshot.jpeg")

    for camera_id, response in ((first, one), (second, other)):
        captured = int(parsedate_to_datetime(response.headers["Date"]).timestamp() * 1000)
        assert read_jpeg_comment(response.content) == (camera_tag(camera_id), captured)
    assert one.content != other.content


def test_an_exact_frame_is_the_frame_at_exactly_that_millisecond(rhombus_client, gapped):
    camera_id, start = gapped
    moment = ms(start) + 1234

    frame_uri = rhombus_client.ok("/video/getExactFrameUri", {"cameraUuid": camera_id, "timestampMs": moment})
    image = rhombus_client.media(frame_uri["frameUri"]).content

    assert read_jpeg_comment(image) == (camera_tag(camera_id), moment)


@pytest.mark.parametrize("camera_id", ["../x", "cam/1", "cam\\1", "tab\tand\x01bell", "caméra-东", "x" * 300])
def test_cameras_with_chosen_ids_have_snapshots_and_clips(rhombus_client, rhombus_sim, camera_id):
    from urllib.parse import quote

    start = hour_floor(sim_now(rhombus_sim)) - timedelta(hours=1)
    rhombus_sim.add_camera(
        Id=camera_id, Name="Odd", Recordings=[[start.isoformat(), (start + timedelta(seconds=5)).isoformat()]]
    )

    path = quote(camera_id, safe="").replace(".", "%2E")
    snapshot = rhombus_client.media(f"/media/{path}/us-west-2/snapshot.jpeg")
    data = finished_clip(rhombus_client, rhombus_sim, camera_id, start, 5)

    assert snapshot.status_code == 200 and read_jpeg_comment(snapshot.content)[0] == camera_tag(camera_id)
    assert footage_of(data).describes(camera_id, ms(start), ms(start) + 5000) == ""
    states = rhombus_client.ok("/camera/getMinimalCameraStateList")["cameraStates"]
    assert camera_id in {state["uuid"] for state in states}


def test_saved_clips_are_listed_by_title_a_page_at_a_time_and_bad_requests_are_refused(
    rhombus_client, rhombus_sim, gapped
):
    camera_id, start = gapped
    rhombus_sim.configure(DefaultPageSize=2, MaxPageSize=2)
    for title in ("Clearance a clr-aa", "Clearance b clr-aa", "Clearance c clr-aa", "Other clr-bb"):
        body = {"deviceUuids": [f"{camera_id}.v0"], "startTimeMillis": ms(start), "durationSec": 10, "title": title}
        rhombus_client.ok("/video/spliceV3", body)
    query = {"searchFilter": "CLR-AA", "timestampMsAfter": 0, "timestampMsBefore": ms(start) + 3_600_000}

    first = rhombus_client.ok("/event/getClipsWithProgress", {**query, "pageSize": 1000})
    last = rhombus_client.ok("/event/getClipsWithProgress", {**query, "pageToken": first["pageToken"]})
    refused = [
        rhombus_client.call("/event/getClipsWithProgress", body).json()
        for body in (
            {"searchFilter": "clr-aa"},  # no time range
            {**query, "pageSize": 0},
            {**query, "pageToken": "not-a-token"},
            {**query, "timestampMsBefore": 0},
        )
    ]

    titles = [c["title"] for c in first["savedClips"] + last["savedClips"]]
    assert titles == ["Clearance a clr-aa", "Clearance b clr-aa", "Clearance c clr-aa"]
    assert first["pageToken"] and last["pageToken"] is None
    assert all(answer["error"] is True for answer in refused)


@pytest.mark.parametrize("kind", ["DropAfterCreate", "HoldAfterCreate"])
def test_a_clip_is_saved_before_its_answer_is_dropped_or_held(rhombus_client, rhombus_sim, gapped, kind):
    camera_id, start = gapped
    if kind == "DropAfterCreate":
        rhombus_sim.drop_after_create()
        with pytest.raises(requests.ConnectionError):
            splice(rhombus_client, camera_id, start, 10)
    else:
        rhombus_sim.hold_after_create(seconds=1)  # not released: answered after the second
        assert splice(rhombus_client, camera_id, start, 10).json()["clipUuid"]

    assert len(rhombus_sim.saved_clips()) == 1
    assert splice(rhombus_client, camera_id, start, 10).status_code == 200  # the fault was used up
    assert rhombus_sim.faults()["Held"] == 0
