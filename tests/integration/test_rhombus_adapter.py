"""The Rhombus adapter against the Rhombus profile of the VMS simulator, over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.vms.errors import CameraNotFound, DeviceUnavailable, NoFootage, VmsAuthError, VmsVendorError
from tests.integration.vms_helpers import JPEG_MAGIC, count, fetch, recent_window, rhombus_adapter, wait_for_clip


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


def test_live_and_recorded_snapshots_are_jpegs(stack, rhombus):
    start, end = recent_window(hours_ago=2, minutes=30)
    camera = rhombus.add_camera(Name="Lobby", Online=True, Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    live = adapter.get_snapshot(camera["Id"])
    at = adapter.get_snapshot(camera["Id"], at=start + timedelta(minutes=5))
    assert live.content.startswith(JPEG_MAGIC) and at.content.startswith(JPEG_MAGIC)
    assert at.captured_at == start + timedelta(minutes=5)


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
        adapter.start_clip("AAAAAAAAAAAAAAAAAAAAAA", *recent_window(2, 10))
    with pytest.raises(CameraNotFound):
        adapter.get_snapshot("AAAAAAAAAAAAAAAAAAAAAA")


def test_a_window_over_60_minutes_is_split_into_clips_that_download_and_are_deleted(stack, rhombus):
    rhombus.configure(BitrateKbps=16)
    start, end = recent_window(hours_ago=4, minutes=90)
    camera = rhombus.add_camera(Name="Long", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    ticket = adapter.start_clip(camera["Id"], start, end)
    assert len(ticket["clips"]) == 2
    status = wait_for_clip(adapter, ticket, rhombus)
    assert status.state == "ready" and len(status.downloads) == 2 and status.missing == []
    for download in status.downloads:
        expected = rhombus.stream_info_for_url(download.url)
        assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])
    adapter.cleanup(ticket)
    assert rhombus.saved_clips() == []


def test_a_piece_without_footage_is_reported_missing_and_the_rest_delivered(stack, rhombus):
    start, _ = recent_window(hours_ago=5, minutes=0)
    end = start + timedelta(minutes=120)
    recorded = [[start.isoformat(), (start + timedelta(minutes=30)).isoformat()]]
    camera = rhombus.add_camera(Name="Half", Recordings=recorded)
    adapter = rhombus_adapter(stack)
    status = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end), rhombus)
    assert status.state == "ready" and len(status.downloads) == 1
    assert [(m.start, m.end) for m in status.missing] == [(start + timedelta(minutes=60), end)]


def test_a_dropped_clip_download_resumes_with_range(stack, rhombus):
    start, end = recent_window(hours_ago=2, minutes=3)
    camera = rhombus.add_camera(Name="Drop", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = rhombus_adapter(stack)
    download = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end), rhombus).downloads[0]
    expected = rhombus.stream_info_for_url(download.url)
    rhombus.drop_downloads(after_bytes=250_000, count=1)
    assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])


def test_429_waits_at_least_the_retry_after(stack, rhombus):
    rhombus.seed_cameras(2)
    rhombus.inject_fault("get_camera_states", 429, retry_after=1, count=1)
    started = time.monotonic()
    assert len(list(rhombus_adapter(stack).list_cameras())) == 2
    assert time.monotonic() - started >= 1.0


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
