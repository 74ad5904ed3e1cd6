"""The Rhombus adapter against the Rhombus profile of the VMS simulator, over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from devstack.footage import camera_tag, read_jpeg_comment
from shared.vms.errors import (
    CameraNotFound,
    DeviceUnavailable,
    NoFootage,
    VmsAuthError,
    VmsTransient,
    VmsVendorError,
)
from tests.integration.vms_helpers import (
    JPEG_MAGIC,
    count,
    ms,
    new_tag,
    not_exactly,
    recent_window,
    rhombus_adapter,
    spans,
    wait_for_clip,
)


@pytest.fixture
def rhombus(stack):
    control = stack.rhombus.control
    control.reset()
    yield control
    control.clear_faults()


@pytest.mark.parametrize("cameras", [0, 1, 1201])
def test_discovery_returns_every_camera(stack, rhombus, cameras):
    rhombus.seed_cameras(cameras)
    found = list(rhombus_adapter(stack).list_cameras())
    assert len({c.id for c in found}) == cameras


def test_discovery_reports_status_and_position(stack, rhombus):
    placed = rhombus.add_camera(Name="Gate", Online=True, Latitude=45.5, Longitude=-73.6)
    offline = rhombus.add_camera(Name="Dock", Online=False)
    cameras = {c.id: c for c in rhombus_adapter(stack).list_cameras()}
    assert (cameras[placed["Id"]].latitude, cameras[placed["Id"]].online) == (45.5, True)
    assert cameras[offline["Id"]].online is False and cameras[offline["Id"]].latitude is None


def test_live_and_recorded_snapshots_are_jpegs_naming_their_camera_and_time(stack, rhombus):
    start, end = recent_window(hours_ago=2, minutes=30)
    camera = rhombus.add_camera(Name="Lobby", Online=True, Recordings=[[start.isoformat(), end.isoformat()]])
    other = rhombus.add_camera(Name="Hall", Online=True, Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    live = adapter.get_snapshot(camera["Id"])
    asked = start + timedelta(minutes=5, milliseconds=321)
    at = adapter.get_snapshot(camera["Id"], at=asked)
    elsewhere = adapter.get_snapshot(other["Id"], at=asked)
    assert live.content.startswith(JPEG_MAGIC) and at.content.startswith(JPEG_MAGIC)
    assert at.captured_at == asked
    for camera_id, shot in ((camera["Id"], live), (camera["Id"], at), (other["Id"], elsewhere)):
        assert read_jpeg_comment(shot.content) == (camera_tag(camera_id), ms(shot.captured_at))
    assert len({live.content, at.content, elsewhere.content}) == 3


def test_an_offline_camera_has_no_live_image(stack, rhombus):
    camera = rhombus.add_camera(Name="Roof", Online=False)
    with pytest.raises(DeviceUnavailable):
        rhombus_adapter(stack).get_snapshot(camera["Id"])


def test_no_footage_reported_as_200_with_error_is_a_typed_error(stack, rhombus):
    camera = rhombus.add_camera(Name="New", Recordings="none")
    with pytest.raises(NoFootage, match="No footage"):
        rhombus_adapter(stack).get_snapshot(camera["Id"], at=datetime.now(UTC) - timedelta(hours=1))


def test_an_unknown_camera_is_camera_not_found(stack, rhombus):
    adapter = rhombus_adapter(stack)
    with pytest.raises(CameraNotFound):
        adapter.find_recordings("AAAAAAAAAAAAAAAAAAAAAA", *recent_window(2, 10))
    with pytest.raises(CameraNotFound):
        adapter.start_clip("AAAAAAAAAAAAAAAAAAAAAA", *recent_window(2, 10), tag=new_tag())
    with pytest.raises(CameraNotFound):
        adapter.get_snapshot("AAAAAAAAAAAAAAAAAAAAAA")


# ---- coverage and clips: only covered time, every file exactly its footage ------------------------------


def test_coverage_reports_the_gaps_and_clips_hold_only_footage(stack, rhombus):
    rhombus.configure(BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    recorded = [(t0, t0 + timedelta(minutes=4)), (t0 + timedelta(minutes=10), t0 + timedelta(minutes=13))]
    camera_id = rhombus.add_camera(Name="Gaps", Recordings=[[s.isoformat(), e.isoformat()] for s, e in recorded])["Id"]
    adapter = rhombus_adapter(stack)
    window = (t0 - timedelta(minutes=5), t0 + timedelta(minutes=20))

    assert adapter.capabilities.reports_coverage
    assert spans(adapter.find_recordings(camera_id, *window)) == recorded
    ticket = adapter.start_clip(camera_id, *window, tag=new_tag())
    status = wait_for_clip(adapter, ticket, rhombus)

    assert status.state == "ready" and spans(status.downloads) == recorded
    assert spans(status.missing) == [(window[0], t0), (recorded[0][1], recorded[1][0]), (recorded[1][1], window[1])]
    assert stack.rhombus.api_key not in json.dumps(ticket) + json.dumps([d.to_json() for d in status.downloads])
    for download in status.downloads:
        assert not_exactly(adapter, download, camera_id) == ""  # no placeholder frame anywhere
    adapter.cleanup(ticket)
    assert rhombus.leftovers() == []


def test_a_clip_spliced_over_a_gap_would_hold_placeholders(stack, rhombus):
    """What the coverage check protects against: Rhombus fills time without footage with placeholder frames."""
    rhombus.configure(BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id = rhombus.add_camera(Name="Gap", Recordings=[[t0.isoformat(), (t0 + timedelta(minutes=1)).isoformat()]])[
        "Id"
    ]
    adapter = rhombus_adapter(stack)
    body = {"deviceUuids": [f"{camera_id}.v0"], "startTimeMillis": ms(t0), "durationSec": 120, "title": "blind"}
    clip_uuid = adapter._post("/api/video/spliceV3", body, operation="splice")["clipUuid"]
    span = {"start": t0.isoformat(), "end": (t0 + timedelta(minutes=2)).isoformat()}
    blind = {"clips": [{"clip_uuid": clip_uuid, **span}], **span}
    status = wait_for_clip(adapter, blind, rhombus)

    assert "placeholders" in not_exactly(adapter, status.downloads[0], camera_id)
    adapter.cleanup(blind)


def test_seams_under_two_seconds_are_one_recording(stack, rhombus):
    rhombus.configure(BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    parts = [
        (t0, t0 + timedelta(seconds=30, milliseconds=400)),
        (t0 + timedelta(seconds=31), t0 + timedelta(minutes=1)),
    ]
    camera_id = rhombus.add_camera(Name="Seam", Recordings=[[s.isoformat(), e.isoformat()] for s, e in parts])["Id"]
    adapter = rhombus_adapter(stack)

    covered = adapter.find_recordings(camera_id, t0, t0 + timedelta(minutes=1))
    status = wait_for_clip(
        adapter, adapter.start_clip(camera_id, t0, t0 + timedelta(minutes=1), tag=new_tag()), rhombus
    )

    assert spans(covered) == [(t0, t0 + timedelta(minutes=1))]
    assert [not_exactly(adapter, d, camera_id) for d in status.downloads] == [""]


def test_the_last_two_minutes_are_not_known_yet(stack, rhombus):
    now = datetime.now(UTC)
    recording = [[(now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()]]
    camera_id = rhombus.add_camera(Name="Live", Recordings=recording)["Id"]

    covered = rhombus_adapter(stack).find_recordings(camera_id, now - timedelta(minutes=10), now)

    assert len(covered) == 1 and covered[0].start == now - timedelta(minutes=10)
    assert covered[0].end <= datetime.now(UTC) - timedelta(seconds=120)


def test_footage_kept_on_an_offline_camera_is_reported_missing_not_filled(stack, rhombus):
    rhombus.configure(BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    end = t0 + timedelta(minutes=3)
    local = (t0 + timedelta(minutes=1), t0 + timedelta(minutes=2))
    camera_id = rhombus.add_camera(
        Name="Edge",
        Recordings=[[t0.isoformat(), end.isoformat()]],
        LocalOnly=[[local[0].isoformat(), local[1].isoformat()]],
    )["Id"]
    adapter = rhombus_adapter(stack)

    online = adapter.find_recordings(camera_id, t0, end)
    rhombus.set_online(camera_id, False)
    offline = adapter.find_recordings(camera_id, t0, end)
    ticket = adapter.start_clip(camera_id, t0, end, tag=new_tag())
    status = wait_for_clip(adapter, ticket, rhombus)

    assert spans(online) == [(t0, end)]
    assert spans(offline) == [(t0, local[0]), (local[1], end)]
    assert spans(status.missing) == [local]
    assert [not_exactly(adapter, d, camera_id) for d in status.downloads] == ["", ""]
    adapter.cleanup(ticket)


def test_a_window_over_60_minutes_is_split_into_clips_that_download_and_are_deleted(stack, rhombus):
    rhombus.configure(BitrateKbps=16)
    start, end = recent_window(hours_ago=4, minutes=90)
    camera = rhombus.add_camera(Name="Long", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    assert len(ticket["clips"]) == 2
    status = wait_for_clip(adapter, ticket, rhombus)
    assert status.state == "ready" and status.missing == []
    assert spans(status.downloads) == [(start, start + timedelta(minutes=60)), (start + timedelta(minutes=60), end)]
    for download in status.downloads:
        assert not_exactly(adapter, download, camera["Id"]) == ""
    adapter.cleanup(ticket)
    assert rhombus.saved_clips() == [] and rhombus.leftovers() == []


@pytest.mark.parametrize("moment", ["after success", "while splicing", "after a failure"])
def test_cleanup_deletes_every_saved_clip_and_can_be_repeated(stack, rhombus, moment):
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = rhombus.add_camera(Name="Clean", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    if moment == "after a failure":
        rhombus.fail_exports()
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    if moment != "while splicing":
        wait_for_clip(adapter, ticket, rhombus)

    adapter.cleanup(ticket)

    assert rhombus.leftovers() == []
    adapter.cleanup(ticket)  # already gone: fine


def downloads_logged(control, operation: str) -> list[tuple[int, str | None]]:
    """(status, Range header) of each download request, from the simulator's request log."""
    return [(r["Status"], r.get("Range")) for r in control.requests() if r["Operation"] == operation]


def test_a_clip_download_dropped_after_the_first_chunk_resumes_with_range(stack, rhombus):
    start, end = recent_window(hours_ago=2, minutes=3)  # ~45 MB
    camera = rhombus.add_camera(Name="Drop", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    download = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end, tag=new_tag()), rhombus).downloads[0]
    rhombus.drop_downloads(after_bytes=1_500_000, count=1)  # past the first 1 MiB chunk handed out

    assert not_exactly(adapter, download, camera["Id"]) == ""  # every byte, in order, exactly once

    assert downloads_logged(rhombus, "download_clip") == [(200, None), (206, "bytes=1048576-")]


def test_a_dropped_download_from_a_server_without_ranges_fails_rather_than_passing_on_a_part(stack, rhombus):
    start, end = recent_window(hours_ago=2, minutes=3)
    camera = rhombus.add_camera(Name="NoRanges", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    download = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end, tag=new_tag()), rhombus).downloads[0]
    rhombus.ignore_ranges(count=1)
    rhombus.drop_downloads(after_bytes=1_500_000, count=1)
    received = 0

    with pytest.raises(VmsTransient, match="cannot resume"), adapter.open_download(download) as stream:
        for chunk in stream:
            received += len(chunk)

    assert received == 1 << 20  # what was handed out before the drop; the caller abandons the file
    assert downloads_logged(rhombus, "download_clip") == [(200, None)]  # no resume was attempted


def test_a_resume_the_server_answers_with_the_whole_file_fails_rather_than_duplicating_bytes(stack, rhombus):
    start, end = recent_window(hours_ago=2, minutes=3)
    camera = rhombus.add_camera(Name="Forgetful", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    download = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end, tag=new_tag()), rhombus).downloads[0]
    rhombus.drop_downloads(after_bytes=1_500_000, count=1)

    stream = adapter.open_download(download)  # opened: the server said it accepts ranges
    rhombus.ignore_ranges(count=1)  # ...but answers the resume with the whole file

    with pytest.raises(VmsTransient, match="did not resume at byte 1048576"), stream:
        for _ in stream:
            pass

    assert downloads_logged(rhombus, "download_clip") == [(200, None), (200, "bytes=1048576-")]


@pytest.mark.parametrize("camera_id", ["../x", "cam/1", "cam\\1", "tab\tand\x01bell", "caméra-东", "x" * 300])
def test_cameras_with_unusual_ids_deliver_their_own_footage(stack, rhombus, camera_id):
    start, end = recent_window(hours_ago=2, minutes=1)
    rhombus.add_camera(Id=camera_id, Name="Odd", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    snapshot = adapter.get_snapshot(camera_id)
    ticket = adapter.start_clip(camera_id, start, end, tag=new_tag())
    status = wait_for_clip(adapter, ticket, rhombus)
    assert read_jpeg_comment(snapshot.content)[0] == camera_tag(camera_id)
    assert [not_exactly(adapter, d, camera_id) for d in status.downloads] == [""]
    adapter.cleanup(ticket)
    assert rhombus.leftovers() == []


def test_429_waits_at_least_the_retry_after(stack, rhombus):
    rhombus.seed_cameras(2)
    rhombus.inject_fault("get_camera_states", 429, retry_after=1, count=1)

    assert len(list(rhombus_adapter(stack).list_cameras())) == 2

    logged = [r for r in rhombus.requests() if r["Operation"] == "get_camera_states"]
    assert [r["Status"] for r in logged] == [429, 200]
    limited, retried = (datetime.fromisoformat(r["TimeUtc"]) for r in logged)
    assert (retried - limited).total_seconds() >= 1.0 - 0.002  # as the simulator saw it (ms resolution)


def test_a_200_with_error_true_is_a_failure_not_a_result(stack, rhombus):
    camera = rhombus.add_camera(Name="Cam")
    with pytest.raises(VmsVendorError, match="durationSec must be positive"):
        rhombus_adapter(stack)._post(
            "/api/video/spliceV3",
            {"deviceUuids": [camera["Id"] + ".v0"], "startTimeMillis": 0, "durationSec": 0},
            operation="splice",
        )


def test_a_wrong_api_key_is_an_auth_error_that_names_the_setting(stack, rhombus):
    with pytest.raises(VmsAuthError, match="RHOMBUS_API_KEY"):
        list(rhombus_adapter(stack, api_key="wrong").list_cameras())


def test_5xx_is_retried_then_given_up_with_a_typed_error(stack, rhombus):
    from shared.vms.errors import VmsTransient

    rhombus.inject_fault("get_camera_states", 502, count=20)
    with pytest.raises(VmsTransient, match="HTTP 502"):
        list(rhombus_adapter(stack).list_cameras())
    assert count(rhombus, "get_camera_states", 502) == 4


def test_a_clip_request_that_fails_half_way_leaves_no_clip_behind(stack, rhombus):
    t0, _ = recent_window(hours_ago=5, minutes=0)
    recorded = [[t0.isoformat(), (t0 + timedelta(minutes=4)).isoformat()]]
    recorded.append([(t0 + timedelta(minutes=10)).isoformat(), (t0 + timedelta(minutes=20)).isoformat()])
    camera_id = rhombus.add_camera(Name="Half", Recordings=recorded)["Id"]
    rhombus.configure(MaxClipSeconds=300)  # the second clip (10 min) is refused

    with pytest.raises(VmsVendorError, match="300 seconds"):
        rhombus_adapter(stack).start_clip(camera_id, t0, t0 + timedelta(minutes=20), tag=new_tag())

    assert len(rhombus.jobs()) == 1 and rhombus.leftovers() == []


# ---- saved clips found by their tag (a run killed, or an answer lost, after Rhombus saved them) --------


def two_recordings(rhombus, t0):
    """A camera recorded [t0, t0+4 min) and [t0+10 min, t0+13 min): a clip request makes two clips."""
    recorded = [(t0, t0 + timedelta(minutes=4)), (t0 + timedelta(minutes=10), t0 + timedelta(minutes=13))]
    return rhombus.add_camera(Name="Two", Recordings=[[s.isoformat(), e.isoformat()] for s, e in recorded])["Id"]


def test_a_clip_whose_answer_was_lost_is_found_and_removed_by_its_tag(stack, rhombus):
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id = two_recordings(rhombus, t0)
    adapter = rhombus_adapter(stack)
    tag = new_tag()
    rhombus.drop_after_create()  # Rhombus saves the clip, then the connection closes without an answer

    with pytest.raises(VmsTransient):
        adapter.start_clip(camera_id, t0, t0 + timedelta(minutes=20), tag=tag)

    assert count(rhombus, "splice") == 1  # sent once: a retry would have saved a second clip
    left = rhombus.leftovers()
    assert [item["Kind"] for item in left] == ["job"] and tag in left[0]["Name"].split()
    assert adapter.remove_tagged(tag) == 1
    assert rhombus.leftovers() == []
    assert adapter.remove_tagged(tag) == 0  # idempotent


def test_remove_tagged_finds_every_tagged_clip_across_pages_and_nothing_else(stack, rhombus):
    rhombus.configure(DefaultPageSize=2, MaxPageSize=2)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id = two_recordings(rhombus, t0)
    adapter = rhombus_adapter(stack)
    tag, window = new_tag(), (t0, t0 + timedelta(minutes=20))
    for _ in range(3):  # three runs that each saved two clips and never recorded them
        adapter.start_clip(camera_id, *window, tag=tag)
    kept = adapter.start_clip(camera_id, *window, tag=new_tag())

    assert adapter.remove_tagged(tag) == 6
    assert count(rhombus, "list_clips") == 3  # six clips found by the search, two a page
    assert sorted(item["Id"] for item in rhombus.leftovers()) == sorted(clip["clip_uuid"] for clip in kept["clips"])
    adapter.cleanup(kept)
    assert rhombus.leftovers() == []


def test_remove_tagged_of_an_unknown_tag_removes_nothing(stack, rhombus):
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id = two_recordings(rhombus, t0)
    adapter = rhombus_adapter(stack)
    ticket = adapter.start_clip(camera_id, t0, t0 + timedelta(minutes=20), tag=new_tag())
    before = len(rhombus.requests())

    assert adapter.remove_tagged(new_tag()) == 0

    assert {entry["Operation"] for entry in rhombus.requests()[before:]} == {"list_clips"}
    assert len(rhombus.leftovers()) == 2
    adapter.cleanup(ticket)
    assert rhombus.leftovers() == []
