"""The EEN adapter against the EEN profile of the VMS simulator, over real HTTP, grant in Azurite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.vms.errors import CameraNotFound, NoFootage, VmsAuthRevoked, VmsTransient
from tests.integration.vms_helpers import (
    JPEG_MAGIC,
    count,
    een_adapter,
    fetch,
    fresh_token_table,
    recent_window,
    wait_for_clip,
)


@pytest.fixture
def een(stack):
    control = stack.een.control
    control.reset()
    yield control
    control.clear_faults()


# ---- discovery ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cameras", "pages"), [(0, 1), (1, 1), (500, 1), (1201, 3)])
def test_discovery_returns_every_camera_across_pages(stack, een, cameras, pages):
    een.seed_cameras(cameras)
    found = list(een_adapter(stack).list_cameras())
    assert len(found) == cameras
    assert len({c.id for c in found}) == cameras
    assert count(een, "list_cameras") == pages


def test_discovery_reports_position_status_and_time_zone_and_null_when_unknown(stack, een):
    placed = een.add_camera(
        Name="Gate", Online=True, Latitude=45.5, Longitude=-73.6, Azimuth=90.0, TimeZone="America/Toronto"
    )
    offline = een.add_camera(Name="Dock", Online=False)
    cameras = {c.id: c for c in een_adapter(stack).list_cameras()}
    gate, dock = cameras[placed["Id"]], cameras[offline["Id"]]
    assert (gate.latitude, gate.longitude, gate.azimuth, gate.timezone, gate.online) == (
        45.5,
        -73.6,
        90.0,
        "America/Toronto",
        True,
    )
    assert dock.online is False
    assert dock.latitude is None and dock.longitude is None


# ---- snapshots ---------------------------------------------------------------------------------------


def test_a_live_snapshot_is_a_jpeg_with_the_frames_own_time(stack, een):
    camera = een.add_camera(Name="Lobby", Online=True)
    snapshot = een_adapter(stack).get_snapshot(camera["Id"])
    assert snapshot.content.startswith(JPEG_MAGIC) and snapshot.content_type == "image/jpeg"
    assert abs(snapshot.captured_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_snapshot_at_a_time_is_the_recorded_frame_at_or_before_it(stack, een):
    start, end = recent_window(hours_ago=3, minutes=30)
    camera = een.add_camera(Name="Yard", Recordings=[[start.isoformat(), end.isoformat()]])
    asked = start + timedelta(minutes=10)
    snapshot = een_adapter(stack).get_snapshot(camera["Id"], at=asked)
    assert snapshot.content.startswith(JPEG_MAGIC)
    assert start <= snapshot.captured_at <= asked


def test_an_offline_camera_falls_back_to_its_latest_recorded_frame(stack, een):
    start, end = recent_window(hours_ago=1, minutes=30)
    camera = een.add_camera(Name="Roof", Online=False, Recordings=[[start.isoformat(), end.isoformat()]])
    snapshot = een_adapter(stack).get_snapshot(camera["Id"])
    assert snapshot.content.startswith(JPEG_MAGIC)
    assert snapshot.captured_at <= end
    assert count(een, "live_image", 503) == 1


def test_no_footage_at_the_time_is_a_typed_error(stack, een):
    camera = een.add_camera(Name="New", Recordings="none")
    with pytest.raises(NoFootage):
        een_adapter(stack).get_snapshot(camera["Id"], at=datetime.now(UTC) - timedelta(hours=1))


def test_an_unknown_camera_is_camera_not_found(stack, een):
    adapter = een_adapter(stack)
    with pytest.raises(CameraNotFound):
        adapter.get_snapshot("deadbeef")
    with pytest.raises(CameraNotFound):
        adapter.find_recordings("deadbeef", *recent_window(2, 10))


# ---- video, route A (direct MP4) ---------------------------------------------------------------------


def test_coverage_reports_the_gaps_and_each_segment_streams_exactly(stack, een):
    t0, _ = recent_window(hours_ago=5, minutes=0)
    recorded = [(t0, t0 + timedelta(minutes=4)), (t0 + timedelta(minutes=10), t0 + timedelta(minutes=13))]
    camera = een.add_camera(Name="Gaps", Recordings=[[s.isoformat(), e.isoformat()] for s, e in recorded])
    adapter = een_adapter(stack)
    window = (t0 - timedelta(minutes=5), t0 + timedelta(minutes=20))
    assert [(i.start, i.end) for i in adapter.find_recordings(camera["Id"], *window)] == recorded
    ticket = adapter.start_clip(camera["Id"], *window)
    status = adapter.poll_clip(ticket)
    assert status.state == "ready" and len(status.downloads) == 2
    for download in status.downloads:
        expected = een.stream_info_for_url(download.url)
        size, sha, largest = fetch(adapter, download)
        assert (size, sha) == (expected["Size"], expected["Sha256"])
        assert largest <= 1024 * 1024  # streamed in bounded chunks


def test_a_dropped_download_resumes_with_range_and_is_never_truncated(stack, een):
    start, end = recent_window(hours_ago=2, minutes=3)
    camera = een.add_camera(Name="Drop", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end)).downloads[0]
    expected = een.stream_info_for_url(download.url)
    een.drop_downloads(after_bytes=300_000, count=2)
    assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])
    assert count(een, "media_stream") == 3


def test_a_dropped_chunked_download_also_resumes(stack, een):
    start, end = recent_window(hours_ago=2, minutes=2)
    camera = een.add_camera(Name="Chunked", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end)).downloads[0]
    expected = een.stream_info_for_url(download.url)
    een.chunked_downloads(count=None)
    een.drop_downloads(after_bytes=200_000, count=1)
    assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])


def test_an_expired_media_url_is_requested_again(stack, een):
    start, end = recent_window(hours_ago=2, minutes=2)
    camera = een.add_camera(Name="Expiring", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end)).downloads[0]
    expected = een.stream_info_for_url(download.url)
    een.expire_media_urls()
    assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])
    assert count(een, "list_media") == 2  # the second one fetched a fresh URL


# ---- video, route B (export jobs) --------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary", ["spec", "notes"])
def test_an_export_longer_than_8_hours_is_split_polled_downloaded_and_deleted(stack, een, vocabulary):
    een.configure(JobStates=vocabulary, BitrateKbps=8)
    start = (datetime.now(UTC) - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=9)
    camera = een.add_camera(Name="Long", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    ticket = adapter.start_clip(camera["Id"], start, end)
    assert len(ticket["exports"]) == 2
    status = wait_for_clip(adapter, ticket, een)
    assert status.state == "ready" and status.missing == [] and len(status.downloads) >= 2
    for download in status.downloads:
        expected = een.stream_info_for_url(download.url)
        assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])
    adapter.cleanup(ticket)
    assert all(job["Deleted"] for job in een.jobs())


def test_a_failed_export_is_reported_failed(stack, een):
    start, end = recent_window(hours_ago=3, minutes=20)
    camera = een.add_camera(Name="Fails", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    een.fail_exports()
    status = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end), een)
    assert status.state == "failed" and status.detail


def test_a_partial_export_lists_what_is_missing(stack, een):
    start, end = recent_window(hours_ago=3, minutes=30)
    camera = een.add_camera(Name="Partial", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    een.partial_exports()
    status = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end), een)
    assert status.state == "ready" and status.missing


def test_route_a_with_nothing_to_download_falls_back_to_an_export(stack, een):
    camera = een.add_camera(Name="Empty", Recordings="none")
    adapter = een_adapter(stack)
    ticket = adapter.start_clip(camera["Id"], *recent_window(3, 10))
    assert ticket["route"] == "export"


# ---- errors and retries --------------------------------------------------------------------------------


def test_429s_are_backed_off_and_then_succeed(stack, een):
    een.seed_cameras(3)
    een.inject_fault("list_cameras", 429, count=2)
    assert len(list(een_adapter(stack).list_cameras())) == 3
    assert count(een, "list_cameras", 429) == 2


def test_5xx_is_retried_then_given_up_with_a_typed_error(stack, een):
    camera = een.add_camera(Name="Flaky")
    een.inject_fault("list_media", 503, count=20)
    with pytest.raises(VmsTransient, match="HTTP 503"):
        een_adapter(stack).find_recordings(camera["Id"], *recent_window(2, 10))
    assert count(een, "list_media", 503) == 4


# ---- OAuth with rotating refresh tokens ----------------------------------------------------------------


def assert_stored_grant_is_the_newest(stack, een, table) -> None:
    """A brand-new instance using only the stored grant can still refresh: nothing was lost."""
    een.expire_access_tokens()
    assert len(list(een_adapter(stack, table=table).list_cameras())) >= 1


def test_two_instances_refreshing_at_once_share_one_rotation_without_a_401_storm(stack, een):
    een.seed_cameras(2)
    table = fresh_token_table(stack)
    instances = [een_adapter(stack, table=table) for _ in range(2)]
    results: list[object] = []

    def discover(adapter):
        try:
            results.append(len(list(adapter.list_cameras())))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=discover, args=(a,)) for a in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2, 2]
    assert een.tokens()["Refreshes"] == 1
    assert count(een, "list_cameras", 401) == 0
    assert_stored_grant_is_the_newest(stack, een, table)


def test_an_expired_access_token_is_refreshed_once_and_the_rotation_stored(stack, een):
    een.seed_cameras(1)
    table = fresh_token_table(stack)
    adapter = een_adapter(stack, table=table)
    list(adapter.list_cameras())
    een.expire_access_tokens()
    assert len(list(adapter.list_cameras())) == 1
    assert een.tokens()["Refreshes"] == 2 and count(een, "list_cameras", 401) == 1
    assert_stored_grant_is_the_newest(stack, een, table)


def test_a_revoked_grant_says_that_consent_is_needed(stack, een):
    een.revoke_grant()
    with pytest.raises(VmsAuthRevoked, match="consent again"):
        list(een_adapter(stack).list_cameras())


def test_a_new_consent_configured_later_replaces_the_stored_grant(stack, een):
    een.seed_cameras(1)
    table = fresh_token_table(stack)
    list(een_adapter(stack, table=table).list_cameras())
    fresh_seed = een.new_grant()  # the old grant is revoked; the operator configures the new token
    adapter = een_adapter(stack, table=table, een_refresh_token=fresh_seed)
    assert len(list(adapter.list_cameras())) == 1


def test_no_token_client_secret_or_url_signature_reaches_the_logs(stack, een, caplog):
    import logging

    start, end = recent_window(hours_ago=2, minutes=2)
    camera = een.add_camera(Name="Quiet", Recordings=[[start.isoformat(), end.isoformat()]])
    table = fresh_token_table(stack)
    with caplog.at_level(logging.DEBUG):
        adapter = een_adapter(stack, table=table)
        download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end)).downloads[0]
        een.drop_downloads(after_bytes=100_000, count=1)
        fetch(adapter, download)
    grant = table.get_entity("een", stack.een.client_id)
    signature = download.url.split("signature=", 1)[1].split("&", 1)[0]
    secrets = [
        grant["AccessToken"],
        grant["RefreshToken"],
        stack.een.client_secret,
        stack.een.initial_refresh_token,
        signature,
    ]
    assert caplog.records
    for secret in secrets:
        assert secret not in caplog.text
