"""The EEN adapter against the EEN profile of the VMS simulator, over real HTTP, grant in Azurite."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from devstack.footage import FootageReader, camera_tag, read_jpeg_comment
from shared.vms.errors import CameraNotFound, NoFootage, VmsAuthRevoked, VmsRateLimited, VmsTransient
from shared.vms.grant_store import GrantStore
from tests.integration.vms_helpers import (
    JPEG_MAGIC,
    count,
    een_adapter,
    fetch,
    fresh_token_table,
    ms,
    new_tag,
    not_exactly,
    recent_window,
    spans,
    stack_sealer,
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
    assert read_jpeg_comment(snapshot.content) == (camera_tag(camera["Id"]), ms(snapshot.captured_at))


def test_snapshots_differ_per_camera_and_time_and_name_them(stack, een):
    start, end = recent_window(hours_ago=3, minutes=30)
    cameras = [een.add_camera(Name=f"Cam {n}", Recordings=[[start.isoformat(), end.isoformat()]])["Id"] for n in (1, 2)]
    adapter = een_adapter(stack)
    moments = (start + timedelta(minutes=1), start + timedelta(minutes=2))

    shots = {(c, at): adapter.get_snapshot(c, at=at) for c in cameras for at in moments}

    assert len({shot.content for shot in shots.values()}) == 4
    for (camera_id, _), shot in shots.items():
        assert read_jpeg_comment(shot.content) == (camera_tag(camera_id), ms(shot.captured_at))


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


# ---- video: every file is exactly the footage it claims ------------------------------------------------

ROUTES = ["direct", "export"]


def gappy_camera(een, t0):
    """Recorded [t0, t0+4 min) and [t0+10 min, t0+13 min)."""
    recorded = [(t0, t0 + timedelta(minutes=4)), (t0 + timedelta(minutes=10), t0 + timedelta(minutes=13))]
    camera = een.add_camera(Name="Gaps", Recordings=[[s.isoformat(), e.isoformat()] for s, e in recorded])
    return camera["Id"], recorded


@pytest.mark.parametrize("route", ROUTES)
def test_a_window_with_a_gap_gives_one_file_per_recording_each_exactly_its_footage(stack, een, route):
    een.configure(BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id, recorded = gappy_camera(een, t0)
    adapter = een_adapter(stack, een_video_route=route)
    window = (t0 - timedelta(minutes=5), t0 + timedelta(minutes=20))

    assert spans(adapter.find_recordings(camera_id, *window)) == recorded
    ticket = adapter.start_clip(camera_id, *window, tag=new_tag())
    status = wait_for_clip(adapter, ticket, een)

    assert status.state == "ready" and spans(status.downloads) == recorded  # distinct, true times
    assert spans(status.missing) == [(window[0], t0), (recorded[0][1], recorded[1][0]), (recorded[1][1], window[1])]
    for download in status.downloads:
        assert not_exactly(adapter, download, camera_id) == ""
    adapter.cleanup(ticket)
    assert een.leftovers() == []


@pytest.mark.parametrize("route", ROUTES)
def test_recordings_listed_beyond_the_window_never_leak_footage_outside_it(stack, een, route):
    een.configure(UnclippedMediaIntervals=True, BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id, recorded = gappy_camera(een, t0)
    adapter = een_adapter(stack, een_video_route=route)
    window = (t0 + timedelta(minutes=2, seconds=30), t0 + timedelta(minutes=11, milliseconds=250))

    covered = [(window[0], recorded[0][1]), (recorded[1][0], window[1])]
    assert spans(adapter.find_recordings(camera_id, *window)) == covered
    ticket = adapter.start_clip(camera_id, *window, tag=new_tag())
    status = wait_for_clip(adapter, ticket, een)

    assert spans(status.downloads) == covered
    for download in status.downloads:
        assert not_exactly(adapter, download, camera_id) == ""  # cut exactly: nothing before or after
    adapter.cleanup(ticket)
    assert een.leftovers() == []


def test_a_recording_wholly_inside_the_window_streams_directly_without_an_export(stack, een):
    een.configure(UnclippedMediaIntervals=True, BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id, recorded = gappy_camera(een, t0)
    adapter = een_adapter(stack)

    ticket = adapter.start_clip(camera_id, t0 - timedelta(minutes=1), t0 + timedelta(minutes=12), tag=new_tag())

    assert [(d["start"], d["end"]) for d in ticket["downloads"]] == [
        (s.isoformat(), e.isoformat()) for s, e in recorded[:1]
    ]
    assert [(e["start"], e["end"]) for e in ticket["exports"]] == [
        (recorded[1][0].isoformat(), (t0 + timedelta(minutes=12)).isoformat())
    ]
    wait_for_clip(adapter, ticket, een)
    adapter.cleanup(ticket)


def test_an_export_that_loses_part_of_its_period_reports_the_true_times_and_the_hole(stack, een):
    start, end = recent_window(hours_ago=3, minutes=30)
    camera = een.add_camera(Name="Partial", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    een.configure(BitrateKbps=64)
    een.partial_exports()
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    status = wait_for_clip(adapter, ticket, een)
    middle = start + (end - start) / 2
    assert status.state == "ready" and spans(status.downloads) == [(start, middle)]
    assert spans(status.missing) == [(middle, end)]
    assert not_exactly(adapter, status.downloads[0], camera["Id"]) == ""
    adapter.cleanup(ticket)


def test_tickets_hold_no_signed_url_or_secret_and_stay_small(stack, een):
    camera_id = next(c["Id"] for c in een.cameras() if c["HasRecordings"] and c["GapMinutesPerHour"])
    table = fresh_token_table(stack)
    adapter = een_adapter(stack, table=table)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    ticket = adapter.start_clip(camera_id, end - timedelta(hours=2), end, tag=new_tag())
    status = adapter.poll_clip(ticket)
    stored = json.dumps(ticket) + json.dumps([d.to_json() for d in status.downloads])

    grant = table.get_entity("een", stack.een.client_id)
    for secret in ("signature", "expires=", grant["AccessToken"], grant["RefreshToken"], stack.een.client_secret):
        assert secret not in stored
    assert len(json.dumps(ticket)) < 8 * 1024 and len(status.downloads) == 3


@pytest.mark.parametrize("moment", ["after success", "while exporting", "after a failure"])
def test_cleanup_leaves_nothing_in_the_account_and_can_be_repeated(stack, een, moment):
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = een.add_camera(Name="Clean", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    if moment == "after a failure":
        een.fail_exports()
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    if moment != "while exporting":
        wait_for_clip(adapter, ticket, een)

    adapter.cleanup(ticket)
    een.advance_clock(3600)  # an export interrupted by the cleanup never produces files later

    assert een.leftovers() == []
    adapter.cleanup(ticket)  # already gone: fine


def test_a_clip_request_that_fails_half_way_leaves_no_export_behind(stack, een):
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id, _ = gappy_camera(een, t0)
    een.configure(MaxExports=1)  # the second export is refused (429 quotaExceeded)

    with pytest.raises(VmsRateLimited):
        een_adapter(stack, een_video_route="export").start_clip(
            camera_id, t0, t0 + timedelta(minutes=20), tag=new_tag()
        )

    assert len(een.jobs()) == 1 and een.leftovers() == []


def test_a_cleanup_that_cannot_delete_raises_and_a_later_one_finishes(stack, een):
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = een.add_camera(Name="Stuck", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    wait_for_clip(adapter, ticket, een)
    een.inject_fault("delete_trash_file", 500, count=4)

    with pytest.raises(VmsTransient, match="left artefacts behind"):
        adapter.cleanup(ticket)
    left = {(item["Kind"], item.get("Where")) for item in een.leftovers()}
    assert left == {("file", "recycle bin"), ("job", None)}  # the job is kept until its files are gone
    adapter.cleanup(ticket)
    assert een.leftovers() == []


def test_a_dropped_download_resumes_with_range_and_is_never_truncated(stack, een):
    start, end = recent_window(hours_ago=2, minutes=3)
    camera = een.add_camera(Name="Drop", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end, tag=new_tag())).downloads[0]
    expected = een.stream_info(camera["Id"], download.start, download.end)
    een.drop_downloads(after_bytes=300_000, count=2)
    assert fetch(adapter, download)[:2] == (expected["Size"], expected["Sha256"])
    assert count(een, "media_stream") == 3


def test_a_dropped_chunked_download_also_resumes(stack, een):
    start, end = recent_window(hours_ago=2, minutes=2)
    camera = een.add_camera(Name="Chunked", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end, tag=new_tag())).downloads[0]
    een.chunked_downloads(count=None)
    een.drop_downloads(after_bytes=200_000, count=1)
    assert not_exactly(adapter, download, camera["Id"]) == ""


def test_a_media_url_that_expires_mid_download_is_requested_again(stack, een):
    start, end = recent_window(hours_ago=2, minutes=2)
    camera = een.add_camera(Name="Expiring", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end, tag=new_tag())).downloads[0]
    een.drop_downloads(after_bytes=200_000, count=1)
    reader = FootageReader()
    with adapter.open_download(download) as stream:
        een.expire_media_urls()  # the URL in use is now refused: the resume must ask for a fresh one
        for chunk in stream:
            reader.feed(chunk)
    assert reader.result().describes(camera["Id"], ms(start), ms(end)) == ""
    assert count(een, "media_stream", 403) == 1
    assert count(een, "list_media") == 3  # start_clip, open, and the fresh URL


# ---- video, route B (export jobs) --------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary", ["spec", "notes"])
def test_an_export_longer_than_8_hours_is_split_polled_downloaded_and_deleted(stack, een, vocabulary):
    een.configure(JobStates=vocabulary, BitrateKbps=8)
    start = (datetime.now(UTC) - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=9)
    camera = een.add_camera(Name="Long", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    assert len(ticket["exports"]) == 2
    status = wait_for_clip(adapter, ticket, een)
    assert status.state == "ready" and status.missing == []
    assert spans(status.downloads) == [(start, start + timedelta(hours=8)), (start + timedelta(hours=8), end)]
    for download in status.downloads:
        assert not_exactly(adapter, download, camera["Id"]) == ""
    adapter.cleanup(ticket)
    assert een.leftovers() == []


def test_a_failed_export_is_reported_failed(stack, een):
    start, end = recent_window(hours_ago=3, minutes=20)
    camera = een.add_camera(Name="Fails", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    een.fail_exports()
    status = wait_for_clip(adapter, adapter.start_clip(camera["Id"], start, end, tag=new_tag()), een)
    assert status.state == "failed" and status.detail and spans(status.missing) == [(start, end)]


def test_a_window_without_recordings_needs_no_export_and_is_all_missing(stack, een):
    camera = een.add_camera(Name="Empty", Recordings="none")
    adapter = een_adapter(stack)
    window = recent_window(3, 10)
    ticket = adapter.start_clip(camera["Id"], *window, tag=new_tag())
    status = adapter.poll_clip(ticket)
    assert (ticket["downloads"], ticket["exports"]) == ([], [])
    assert status.state == "ready" and status.downloads == [] and spans(status.missing) == [window]


@pytest.mark.parametrize("camera_id", ["../x", "cam/1", "cam\\1", "tab\tand\x01bell", "caméra-东", "x" * 300])
def test_cameras_with_unusual_ids_deliver_their_own_footage(stack, een, camera_id):
    start, end = recent_window(hours_ago=2, minutes=1)
    een.add_camera(Id=camera_id, Name="Odd", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    snapshot = adapter.get_snapshot(camera_id)
    ticket = adapter.start_clip(camera_id, start, end, tag=new_tag())
    status = wait_for_clip(adapter, ticket, een)
    assert read_jpeg_comment(snapshot.content)[0] == camera_tag(camera_id)
    assert [not_exactly(adapter, d, camera_id) for d in status.downloads] == [""]
    adapter.cleanup(ticket)
    assert een.leftovers() == []


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
    """The second instance arrives while the first holds the refresh claim: it waits for the first one's
    result (the wait path of shared/vms/een/auth.py) instead of refreshing with a token about to die."""
    een.seed_cameras(2)
    table = fresh_token_table(stack)
    first, second = een_adapter(stack, table=table), een_adapter(stack, table=table)
    grant = GrantStore(table, "een", stack.een.client_id, stack_sealer(stack, table))
    een.inject_latency("token", 3000)  # the first instance's refresh is answered after 3 s
    results: dict[str, object] = {}

    def discover(name: str, adapter) -> None:
        try:
            results[name] = len(list(adapter.list_cameras()))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[name] = exc

    threads = [threading.Thread(target=discover, args=("first", first))]
    threads[0].start()
    deadline = time.monotonic() + 20
    while (stored := grant.read()) is None or stored.refresh_claimed_until is None:  # the first one claimed it
        assert time.monotonic() < deadline, "the first instance never claimed the refresh"
        time.sleep(0.02)
    assert count(een, "token") == 0  # its refresh is still in flight...
    threads.append(threading.Thread(target=discover, args=("second", second)))
    threads[1].start()  # ...when the second instance needs a token
    for thread in threads:
        thread.join(timeout=60)

    assert results == {"first": 2, "second": 2}
    assert een.tokens()["Refreshes"] == 1 and count(een, "token") == 1  # the second one waited and reused it
    assert count(een, "list_cameras", 401) == 0
    een.clear_faults()
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
        download = adapter.poll_clip(adapter.start_clip(camera["Id"], start, end, tag=new_tag())).downloads[0]
        een.drop_downloads(after_bytes=100_000, count=1)
        fetch(adapter, download)
    grant = table.get_entity("een", stack.een.client_id)
    secrets = [grant["AccessToken"], grant["RefreshToken"], stack.een.client_secret, stack.een.initial_refresh_token]
    assert caplog.records
    for secret in secrets:
        assert secret not in caplog.text
    assert "signature=" in adapter.resolve_url(download)
    assert re.search(r"signature=(?!REDACTED)", caplog.text) is None


# ---- artefacts found by their tag (a run killed, or an answer lost, after the VMS created them) -------

LIST_OPERATIONS = {"token", "client_settings", "current_user", "list_jobs", "list_files", "list_deleted_files"}


def test_an_export_whose_answer_was_lost_is_found_and_removed_by_its_tag(stack, een):
    een.configure(BitrateKbps=64)
    t0, _ = recent_window(hours_ago=5, minutes=0)
    camera_id, _ = gappy_camera(een, t0)
    adapter = een_adapter(stack, een_video_route="export")
    tag = new_tag()
    een.drop_after_create()  # EEN creates the export, then the connection closes without an answer

    with pytest.raises(VmsTransient):
        adapter.start_clip(camera_id, t0, t0 + timedelta(minutes=20), tag=tag)

    assert count(een, "create_export") == 1  # sent once: a retry would have made a second export
    een.advance_clock(600)  # the export nobody heard of finishes: its file lands in the archive
    left = een.leftovers()
    assert sorted(item["Kind"] for item in left) == ["file", "job"]
    assert all(tag in item["Name"].split() for item in left)
    assert adapter.remove_tagged(tag) == 2
    assert een.leftovers() == []
    assert adapter.remove_tagged(tag) == 0  # idempotent


def test_an_export_whose_answer_is_held_exists_in_the_account_until_released(stack, een):
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = een.add_camera(Name="Held", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    een.hold_after_create(seconds=60)
    tickets = []
    worker = threading.Thread(
        target=lambda: tickets.append(adapter.start_clip(camera["Id"], start, end, tag=new_tag()))
    )
    worker.start()

    deadline = time.monotonic() + 20
    while een.held() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert een.held() == 1 and [item["Kind"] for item in een.leftovers()] == ["job"]  # the window to kill a host in
    assert een.release_held() == 1
    worker.join(timeout=20)
    assert len(tickets) == 1 and len(tickets[0]["exports"]) == 1
    adapter.cleanup(tickets[0])
    assert een.leftovers() == []


@pytest.mark.parametrize("where", ["archive", "recycle bin"])
def test_export_files_whose_job_is_gone_are_found_by_their_tag(stack, een, where):
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = een.add_camera(Name="Orphan", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    tag = new_tag()
    ticket = adapter.start_clip(camera["Id"], start, end, tag=tag)
    wait_for_clip(adapter, ticket, een)
    if where == "recycle bin":
        een.inject_fault("delete_trash_file", 500, count=4)
        with pytest.raises(VmsTransient):
            adapter.cleanup(ticket)
        een.clear_faults()
    adapter._api("DELETE", f"/jobs/{ticket['exports'][0]['job_id']}", operation="delete_job").close()  # job expired

    assert [(item["Kind"], item["Where"]) for item in een.leftovers()] == [("file", where)]
    assert adapter.remove_tagged(tag) == 1
    assert een.leftovers() == []


def test_remove_tagged_finds_every_tagged_export_across_pages_and_nothing_else(stack, een):
    een.configure(BitrateKbps=64, DefaultPageSize=2, MaxPageSize=2)
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = een.add_camera(Name="Many", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route="export")
    tag = new_tag()
    for _ in range(3):  # three runs that each created an export and never recorded it
        adapter.start_clip(camera["Id"], start, end, tag=tag)
    kept = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    wait_for_clip(adapter, kept, een)

    assert adapter.remove_tagged(tag) == 6  # three jobs and their three files
    assert count(een, "list_jobs") == 2  # four jobs, two a page
    assert sorted(item["Kind"] for item in een.leftovers()) == ["file", "job"]  # the other tag's export
    adapter.cleanup(kept)
    assert een.leftovers() == []


@pytest.mark.parametrize("route", ROUTES)
def test_remove_tagged_of_an_unknown_tag_removes_nothing(stack, een, route):
    start, end = recent_window(hours_ago=3, minutes=10)
    camera = een.add_camera(Name="Other", Recordings=[[start.isoformat(), end.isoformat()]])
    adapter = een_adapter(stack, een_video_route=route)
    ticket = adapter.start_clip(camera["Id"], start, end, tag=new_tag())
    wait_for_clip(adapter, ticket, een)
    left = een.leftovers()
    before = len(een.requests())

    assert adapter.remove_tagged(new_tag()) == 0

    assert {entry["Operation"] for entry in een.requests()[before:]} <= LIST_OPERATIONS  # listed, deleted nothing
    assert een.leftovers() == left
    adapter.cleanup(ticket)


def test_a_malformed_tag_is_refused_before_any_call(stack, een):
    start, end = recent_window(hours_ago=3, minutes=10)
    adapter = een_adapter(stack, een_video_route="export")
    for tag in ("", "Clr-Upper", "clr 1", "clr-" + "x" * 30):
        with pytest.raises(ValueError):
            adapter.start_clip("any", start, end, tag=tag)
        with pytest.raises(ValueError):
            adapter.remove_tagged(tag)
    assert een.requests() == []
