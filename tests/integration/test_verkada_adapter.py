"""The Verkada adapter against the Verkada profile of the VMS simulator, over real HTTP, tokens in Azurite.

Every MP4 is checked with a real demuxer (PyAV) and, sample by sample, against the footage the simulator
put in it (devstack/footage_mp4.py): the right camera, no hole, timestamps equal to the reported window.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import av
import pytest

from devstack.footage import camera_tag, read_jpeg_comment
from devstack.footage_mp4 import Mp4FootageReader, is_mp4
from shared.http.retry import RetryingSender, RetryPolicy, Timeouts
from shared.http.session import pooled_session
from shared.registry.errors import UploadRejected
from shared.vms.errors import CameraNotFound, DeviceUnavailable, VmsAuthError, VmsTransient
from shared.vms.verkada.adapter import COOLDOWN_SECONDS, VerkadaAdapter
from tests.integration.vms_helpers import (
    FAST_RETRIES,
    JPEG_MAGIC,
    count,
    fresh_token_table,
    new_tag,
    recent_window,
    stack_sealer,
    verkada_adapter,
)


@pytest.fixture
def verkada(stack):
    control = stack.verkada.control
    control.reset()
    control.configure(BitrateKbps=64)
    yield control
    control.clear_faults()


def recorded_camera(control, *intervals: tuple[datetime, datetime], **fields) -> str:
    spans = [[s.isoformat(), e.isoformat()] for s, e in intervals]
    return control.add_camera(Name=fields.pop("Name", "Cam"), Recordings=spans, **fields)["Id"]


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def mp4_bytes(adapter, download) -> bytes:
    with adapter.open_download(download) as stream:
        return b"".join(stream)


def assert_exact_footage(data: bytes, camera_id: str, download, tmp_path) -> None:
    """A real demuxer reads the file; its duration and every sample's time are the reported window's."""
    assert is_mp4(data[:64])
    reader = Mp4FootageReader()
    reader.feed(data)
    assert reader.result().describes(camera_id, ms(download.start), ms(download.end)) == ""
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert container.duration == (download.end - download.start) // timedelta(microseconds=1)
        packets = [p for p in container.demux(video) if p.size]
        first, last, time_base = packets[0], packets[-1], video.time_base
        assert first.pts is not None and last.pts is not None and last.duration and time_base is not None
        assert float(first.pts * time_base) == 0.0
        assert float((last.pts + last.duration) * time_base) == (download.end - download.start).total_seconds()
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(packets)  # every sample decodes


# ---- discovery and thumbnails --------------------------------------------------------------------------


@pytest.mark.parametrize(("cameras", "pages"), [(0, 1), (200, 1), (450, 3)])
def test_discovery_returns_every_camera_across_pages(stack, verkada, cameras, pages):
    verkada.seed_cameras(cameras)
    found = list(verkada_adapter(stack).list_cameras())
    assert len({c.id for c in found}) == len(found) == cameras
    assert count(verkada, "cameras") == pages


def test_discovery_reports_status_position_and_null_when_unknown(stack, verkada):
    placed = verkada.add_camera(Name="Gate", Latitude=45.5, Longitude=-73.6, Azimuth=90.0, TimeZone="America/Toronto")
    offline = verkada.add_camera(Name="Dock", Online=False)
    cameras = {c.id: c for c in verkada_adapter(stack).list_cameras()}
    gate, dock = cameras[placed["Id"]], cameras[offline["Id"]]
    assert (gate.latitude, gate.longitude, gate.azimuth, gate.timezone, gate.online) == (
        45.5, -73.6, 90.0, "America/Toronto", True,
    )  # fmt: skip
    assert dock.online is False and dock.latitude is None and dock.manufacturer == "Verkada"


def test_a_thumbnail_reports_the_real_capture_time_not_the_time_asked(stack, verkada):
    start, end = recent_window(hours_ago=3, minutes=60)
    camera = recorded_camera(verkada, (start, end))
    asked = start + timedelta(minutes=17, seconds=13)
    snapshot = verkada_adapter(stack).get_snapshot(camera, at=asked)
    assert snapshot.content.startswith(JPEG_MAGIC)
    tag, captured_ms = read_jpeg_comment(snapshot.content)
    assert tag == camera_tag(camera)
    assert ms(snapshot.captured_at) == captured_ms  # the image's own time, from X-Verkada-Timestamp
    assert snapshot.captured_at != asked and abs(snapshot.captured_at - asked) <= timedelta(minutes=5)


def test_an_offline_camera_still_has_its_cached_thumbnail_with_its_age(stack, verkada):
    start, end = recent_window(hours_ago=1, minutes=40)
    camera = recorded_camera(verkada, (start, end), Online=False)
    snapshot = verkada_adapter(stack).get_snapshot(camera)
    assert start <= snapshot.captured_at <= end


def test_an_unknown_camera_is_camera_not_found_everywhere(stack, verkada):
    adapter = verkada_adapter(stack)
    unknown = "00000000-0000-4000-8000-000000000000"
    for call in (
        lambda: adapter.find_recordings(unknown, *recent_window(2, 10)),
        lambda: adapter.start_clip(unknown, *recent_window(2, 10), tag=new_tag()),
        lambda: adapter.get_snapshot(unknown),
    ):
        with pytest.raises(CameraNotFound):
            call()


# ---- tokens ------------------------------------------------------------------------------------------


def test_two_instances_share_one_api_token_and_one_streaming_token(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=10)
    camera = recorded_camera(verkada, (start, end))
    table = fresh_token_table(stack)
    first, second = verkada_adapter(stack, table), verkada_adapter(stack, table)
    barrier = threading.Barrier(2)
    errors = []

    def work(adapter):
        try:
            barrier.wait()
            adapter.find_recordings(camera, start, end)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert verkada.verkada_tokens()["ApiTokensMinted"] == 1
    assert verkada.verkada_tokens()["StreamTokensMinted"] == 1


def test_an_expired_token_is_minted_again_once_and_the_call_succeeds(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=10)
    camera = recorded_camera(verkada, (start, end))
    adapter = verkada_adapter(stack)
    status = adapter.poll_clip(adapter.start_clip(camera, start, end, tag=new_tag()))
    verkada.expire_verkada_tokens()  # both the API token and the streaming JWT (mid-job)
    assert camera in {c.id for c in adapter.list_cameras()}
    assert len(mp4_bytes(adapter, status.downloads[0])) > 0
    tokens = verkada.verkada_tokens()
    assert (tokens["ApiTokensMinted"], tokens["StreamTokensMinted"]) == (2, 2)


def test_a_wrong_api_key_is_an_auth_error_that_names_the_setting_and_never_the_key(stack, verkada):
    with pytest.raises(VmsAuthError, match="VERKADA_API_KEY") as raised:
        list(verkada_adapter(stack, api_key="vkd_wrong-key-123").list_cameras())
    assert "wrong-key-123" not in str(raised.value)


def test_tickets_and_downloads_hold_no_credentials(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=5)
    camera = recorded_camera(verkada, (start, end))
    adapter = verkada_adapter(stack)
    ticket = adapter.start_clip(camera, start, end, tag=new_tag())
    status = adapter.poll_clip(ticket)
    stored = json.dumps(ticket) + json.dumps([d.to_json() for d in status.downloads])
    secrets = [stack.verkada.api_key, adapter.api_token.token(), adapter.stream_token.token()]
    assert not any(secret in stored for secret in secrets) and "jwt" not in stored
    assert len(json.dumps(ticket)) < 400


# ---- recordings and video -----------------------------------------------------------------------------


def test_gaps_come_from_the_playlist_and_each_run_is_one_exact_file(stack, verkada, tmp_path):
    start, _ = recent_window(hours_ago=3, minutes=0)
    first, second = (start, start + timedelta(minutes=7)), (start + timedelta(minutes=9), start + timedelta(minutes=12))
    camera = recorded_camera(verkada, first, second)
    adapter = verkada_adapter(stack)
    window = (start - timedelta(minutes=1), start + timedelta(minutes=15))
    recordings = adapter.find_recordings(camera, *window)
    assert [(r.start, r.end) for r in recordings] == [first, second]
    status = adapter.poll_clip(adapter.start_clip(camera, *window, tag=new_tag()))
    assert status.state == "ready"
    assert [(d.start, d.end) for d in status.downloads] == [first, second]
    assert [(m.start, m.end) for m in status.missing] == [
        (window[0], first[0]), (first[1], second[0]), (second[1], window[1]),
    ]  # fmt: skip
    for download in status.downloads:
        assert_exact_footage(mp4_bytes(adapter, download), camera, download, tmp_path)


def test_a_window_that_cuts_segments_is_trimmed_to_whole_samples_inside_it(stack, verkada, tmp_path):
    start, end = recent_window(hours_ago=2, minutes=30)
    camera = recorded_camera(verkada, (start, end))
    adapter = verkada_adapter(stack)
    asked = (start + timedelta(minutes=2, seconds=1, milliseconds=500), start + timedelta(minutes=3, seconds=6.25))
    download = adapter.poll_clip(adapter.start_clip(camera, *asked, tag=new_tag())).downloads[0]
    # segments are 4 s and samples 1 s: the file is the whole samples within the window, not the segments
    assert (download.start, download.end) == (
        start + timedelta(minutes=2, seconds=2),
        start + timedelta(minutes=3, seconds=6),
    )
    assert_exact_footage(mp4_bytes(adapter, download), camera, download, tmp_path)


def test_a_window_over_one_hour_is_split_into_playlists_of_at_most_an_hour(stack, verkada, tmp_path):
    start, end = recent_window(hours_ago=4, minutes=90)
    camera = recorded_camera(verkada, (start, end))
    adapter = verkada_adapter(stack)
    ticket = adapter.start_clip(camera, start, end, tag=new_tag())
    assert len(ticket["pieces"]) == 2
    status = adapter.poll_clip(ticket)
    assert [(d.start, d.end) for d in status.downloads] == [
        (start, start + timedelta(hours=1)),
        (start + timedelta(hours=1), end),
    ]
    assert status.missing == []
    assert_exact_footage(mp4_bytes(adapter, status.downloads[1]), camera, status.downloads[1], tmp_path)


def test_an_offline_camera_whose_footage_is_on_the_camera_is_unavailable_not_empty(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=10)
    camera = recorded_camera(verkada, (start, end), Online=False)
    with pytest.raises(DeviceUnavailable, match="offline"):
        verkada_adapter(stack).find_recordings(camera, start, end)
    assert count(verkada, "stream", 503) == 1  # known offline: no retry storm


def test_a_dropped_segment_is_resumed_and_the_file_is_the_same(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=2)
    camera = recorded_camera(verkada, (start, end))
    verkada.configure(BitrateKbps=400)
    adapter = verkada_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera, start, end, tag=new_tag())).downloads[0]
    clean = mp4_bytes(adapter, download)
    verkada.drop_downloads(after_bytes=100_000, count=2)
    assert mp4_bytes(adapter, download) == clean
    assert count(verkada, "stream", 206) >= 1  # resumed with Range


def test_a_segment_that_cannot_be_completed_fails_the_file_instead_of_truncating_it(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=2)
    camera = recorded_camera(verkada, (start, end))
    verkada.configure(BitrateKbps=400)
    adapter = verkada_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera, start, end, tag=new_tag())).downloads[0]
    verkada.drop_downloads(after_bytes=50_000, count=None)  # every request, resumes included, drops
    with pytest.raises(VmsTransient):
        mp4_bytes(adapter, download)


def test_footage_that_changed_since_it_was_measured_is_never_passed_on(stack, verkada):
    start, end = recent_window(hours_ago=2, minutes=3)
    camera = recorded_camera(verkada, (start, end))
    adapter = verkada_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera, start, end, tag=new_tag())).downloads[0]
    verkada.set_recordings(camera, [(start + timedelta(seconds=30), end)])  # the first 30 s are gone now
    adapter._playlists.clear()  # as a later process would: no cached playlist
    with pytest.raises(VmsTransient):
        mp4_bytes(adapter, download)


# ---- rate limit ----------------------------------------------------------------------------------------


def test_429_waits_out_verkadas_cooldown_and_never_calls_during_it(stack, verkada):
    verkada.configure(RateLimitPerMinute=4, RateLimitCooldownSeconds=1)
    sender = RetryingSender(pooled_session(), FAST_RETRIES, Timeouts(5, 30))
    adapter = VerkadaAdapter(
        stack.verkada.api_key,
        stack.verkada.org_id,
        sender,
        api_url=stack.verkada.api_url,
        token_table=(table := fresh_token_table(stack)),
        sealer=stack_sealer(stack, table),
        cooldown_seconds=1.0,
    )
    for _ in range(6):
        assert list(adapter.list_cameras()) != []
    tokens = verkada.verkada_tokens()
    assert tokens["RateLimited"] >= 2 and tokens["CooldownViolations"] == 0
    assert COOLDOWN_SECONDS == 5.0  # what the agent waits by default: Verkada's documented cooldown


def test_5xx_is_retried_then_given_up_with_a_typed_error(stack, verkada):
    verkada.inject_fault("cameras", 502, count=20)
    with pytest.raises(VmsTransient, match="HTTP 502"):
        list(verkada_adapter(stack, retry=RetryPolicy(max_attempts=3, backoff_initial=0.01, deadline=5)).list_cameras())
    assert count(verkada, "cameras", 502) == 3


# ---- the Registry simulator's content check ------------------------------------------------------------


def test_the_registry_simulator_accepts_the_exact_mp4_and_rejects_a_mix_up(stack, verkada, client, uploader):
    start, end = recent_window(hours_ago=2, minutes=1)
    camera = recorded_camera(verkada, (start, end))
    adapter = verkada_adapter(stack)
    download = adapter.poll_clip(adapter.start_clip(camera, start, end, tag=new_tag())).downloads[0]
    data = mp4_bytes(adapter, download)
    window = {"CameraId": camera, "StartTimeUtc": start.isoformat(), "EndTimeUtc": end.isoformat()}
    job = stack.sim.create_job("mediarequest", {"RequestId": "r", "Cameras": [window]})
    lock = client.lock(job["Id"])

    def deliver(name: str, first: datetime, last: datetime) -> None:
        ticket = client.initialize_upload(job["Id"], lock.lock_token, name, "video/mp4")
        result = uploader.upload(ticket.uri, ticket.json_web_key, [data], content_type="video/mp4")
        client.complete_media(
            job["Id"], lock.lock_token, ticket.file_id, camera_id=camera, start=first, end=last,
            size=result.size, sha256=result.sha256,
        )  # fmt: skip

    deliver("exact.mp4", download.start, download.end)
    assert stack.sim.job(job["Id"])["Files"][0]["Verification"]["Ok"] is True
    with pytest.raises(UploadRejected, match="not the footage it was reported as"):
        deliver("shifted.mp4", download.start + timedelta(seconds=1), download.end)


def test_remove_tagged_finds_nothing_and_asks_verkada_nothing(stack, verkada):
    """HLS creates nothing on Verkada's side, so there is nothing a lost ticket could leave behind."""
    camera = verkada.add_camera(Name="Hls", Online=True)["Id"]
    adapter = verkada_adapter(stack)
    tag = new_tag()
    ticket = adapter.start_clip(camera, *recent_window(2, 10), tag=tag)
    before = len(verkada.requests())

    assert ticket["tag"] == tag
    assert adapter.remove_tagged(tag) == 0
    assert len(verkada.requests()) == before
