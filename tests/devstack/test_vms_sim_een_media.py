"""EEN simulator: recording intervals, mp4 streaming (size, SHA-256, ranges, faults, expiry) and images."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import pytest
import requests

from devstack.footage import FootageReader, camera_tag, read_jpeg_comment
from devstack.vms_sim import stream_sha256, stream_size
from tests.devstack.vms_conftest import API, camera_with, een_time, hour_floor, parse_time, recent_window, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]


def short_recordings(een_sim, camera_id, seconds=(20, 8, 12)):
    """Explicit recordings: a few short intervals with 30 s gaps, ending an hour before now."""
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=1)
    intervals, cursor = [], start
    for length in seconds:
        intervals.append((cursor, cursor + timedelta(seconds=length)))
        cursor += timedelta(seconds=length + 30)
    een_sim.set_recordings(camera_id, intervals)
    return intervals


@pytest.fixture
def mp4(een_client, een_sim):
    """(camera id, the first interval's media item) for a camera with short explicit recordings."""
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True)["Id"]
    intervals = short_recordings(een_sim, camera_id)
    response = een_client.media(camera_id, intervals[0][0], intervals[-1][1])
    assert response.status_code == 200, response.text
    return camera_id, response.json()["results"][0]


def ms(moment) -> int:
    moment = parse_time(moment) if isinstance(moment, str) else moment
    return int(moment.timestamp() * 1000)


def footage_of(data: bytes):
    reader = FootageReader()
    reader.feed(data)
    return reader.result()


def download(client, url, **headers):
    response = client.get(url, headers=headers, stream=True)
    return response, b"".join(response.iter_content(1 << 20))


# -- /media --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start", ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.000 00:00", "yesterday"]
)
def test_timestamps_without_an_explicit_offset_are_refused(een_client, een_sim, start):
    camera_id = een_sim.cameras()[0]["Id"]
    params = {"deviceId": camera_id, "type": "main", "mediaType": "video", "startTimestamp__gte": start}

    response = een_client.get("/media", params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["status"] == "invalidArgument"
    assert body["details"][0]["reason"] == "wrongArgumentValue"


def test_offset_timestamps_are_accepted_and_answered_in_een_format(een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True)["Id"]
    start, end = recent_window(een_sim)

    items = een_client.media(camera_id, start, end).json()["results"]

    assert items and all(i["startTimestamp"].endswith("+00:00") for i in items)
    assert items[0]["startTimestamp"] == een_time(start)
    assert items[-1]["endTimestamp"] == een_time(end)


def test_media_lists_one_interval_per_recording_between_gaps(een_client, een_sim):
    gapped = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=10)["Id"]
    continuous = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=0)["Id"]
    start, end = recent_window(een_sim, hours=2)

    gapped_items = een_client.media(gapped, start, end).json()["results"]
    continuous_items = een_client.media(continuous, start, end).json()["results"]

    assert len(gapped_items) == 3  # one 10-minute gap in each of the two hours
    gaps = [
        parse_time(b["startTimestamp"]) - parse_time(a["endTimestamp"]) for a, b in itertools.pairwise(gapped_items)
    ]
    assert gaps == [timedelta(minutes=10)] * 2
    assert [[i["startTimestamp"], i["endTimestamp"]] for i in gapped_items] == een_sim.recordings(gapped, start, end)
    assert len(continuous_items) == 1
    assert all(i["type"] == "main" and i["mediaType"] == "video" and "mp4Url" in i for i in gapped_items)


def test_media_pages_through_intervals(een_client, een_sim, mp4):
    camera_id, _ = mp4
    start, end = hour_floor(sim_now(een_sim)) - timedelta(hours=2), sim_now(een_sim)

    first = een_client.media(camera_id, start, end, pageSize=2).json()
    second = een_client.media(camera_id, start, end, pageSize=2, pageToken=first["nextPageToken"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert second["nextPageToken"] == ""


def test_camera_without_recordings_has_no_media_and_unknown_camera_is_404(een_client, een_sim):
    silent = camera_with(een_sim, HasRecordings=False)["Id"]
    start, end = recent_window(een_sim)

    assert een_client.media(silent, start, end).json()["results"] == []
    unknown = een_client.media("10ffffff", start, end)
    assert unknown.status_code == 404
    assert unknown.json()["status"] == "notFound" and unknown.json()["details"][0]["reason"] == "resourceNotFound"


def test_missing_required_parameters_are_named(een_client):
    response = een_client.get("/media", {"type": "main"})

    assert response.status_code == 400
    assert response.json()["details"][0]["reason"] == "missingRequiredArgument"
    assert "deviceId" in response.json()["message"]


# -- mp4 streams ---------------------------------------------------------------------------------


def test_mp4_bytes_match_the_advertised_size_and_sha256(een_client, een_sim, mp4):
    camera_id, item = mp4
    response, data = download(een_client, item["mp4Url"])
    info = een_sim.stream_info_for_url(item["mp4Url"])
    start, end = item["startTimestamp"], item["endTimestamp"]

    assert response.status_code == 200 and response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(data) == info["Size"] == 20 * 250_000
    assert hashlib.sha256(data).hexdigest() == info["Sha256"] == stream_sha256(camera_id, start, end)
    assert stream_size(camera_id, start, end) == len(data)
    assert een_sim.stream_info(camera_id, start, end) == info
    assert footage_of(data).describes(camera_id, ms(start), ms(end)) == ""


def test_bitrate_setting_scales_the_stream(een_client, een_sim, mp4):
    camera_id, item = mp4
    een_sim.configure(BitrateKbps=4000)

    info = een_sim.stream_info(camera_id, item["startTimestamp"], item["endTimestamp"])

    assert info["Size"] == 20 * 500_000


def test_a_server_without_ranges_answers_a_range_request_with_the_whole_file(een_client, een_sim, mp4):
    _, item = mp4
    _, full = download(een_client, item["mp4Url"])
    een_sim.ignore_ranges(count=1)

    ignored, data = download(een_client, item["mp4Url"], Range="bytes=10-99")
    honoured, part = download(een_client, item["mp4Url"], Range="bytes=10-99")  # the fault was used up

    assert ignored.status_code == 200 and data == full and "Accept-Ranges" not in ignored.headers
    assert honoured.status_code == 206 and part == full[10:100]
    logged = [(r["Status"], r.get("Range")) for r in een_sim.requests() if r["Operation"] == "media_stream"]
    assert logged[-3:] == [(200, None), (200, "bytes=10-99"), (206, "bytes=10-99")]  # the log keeps each Range


def test_mp4_byte_ranges(een_client, een_sim, mp4):
    _, item = mp4
    _, full = download(een_client, item["mp4Url"])
    size = len(full)

    tail, tail_data = download(een_client, item["mp4Url"], Range="bytes=4000000-")
    middle, middle_data = download(een_client, item["mp4Url"], Range="bytes=10-1048600")
    suffix, suffix_data = download(een_client, item["mp4Url"], Range="bytes=-100")
    beyond, _ = download(een_client, item["mp4Url"], Range=f"bytes={size}-")

    assert tail.status_code == 206 and tail_data == full[4_000_000:]
    assert tail.headers["Content-Range"] == f"bytes 4000000-{size - 1}/{size}"
    assert tail.headers["Accept-Ranges"] == "bytes"
    assert middle.status_code == 206 and middle_data == full[10:1_048_601]
    assert int(middle.headers["Content-Length"]) == 1_048_591
    assert suffix.status_code == 206 and suffix_data == full[-100:]
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"


def test_chunked_mode_streams_the_same_bytes_without_content_length(een_client, een_sim, mp4):
    _, item = mp4
    een_sim.chunked_downloads(count=1)

    chunked, data = download(een_client, item["mp4Url"])
    normal, _ = download(een_client, item["mp4Url"])

    assert "Content-Length" not in chunked.headers
    assert chunked.headers["Transfer-Encoding"] == "chunked"
    assert hashlib.sha256(data).hexdigest() == een_sim.stream_info_for_url(item["mp4Url"])["Sha256"]
    assert "Content-Length" in normal.headers


@pytest.mark.parametrize("chunked", [False, True])
def test_drop_fault_cuts_the_stream_after_n_bytes(een_client, een_sim, mp4, chunked):
    _, item = mp4
    if chunked:
        een_sim.configure(ChunkedDownloads=True)
    een_sim.drop_downloads(after_bytes=1_500_000)
    received = bytearray()

    response = een_client.get(item["mp4Url"], stream=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for piece in response.iter_content(65536):
            received += piece

    assert len(received) <= 1_500_000
    assert download(een_client, item["mp4Url"])[0].status_code == 200  # the fault was used up


def test_a_trickle_fault_applies_to_the_next_download_only_and_keeps_its_bytes(een_client, een_sim, mp4):
    """The pacing itself is checked with an injected clock (test_vms_sim_streams.py)."""
    _, item = mp4
    _, full = download(een_client, item["mp4Url"])
    een_sim.trickle_downloads(bytes_per_second=400_000, count=1)
    assert een_sim.faults()["Downloads"] == [{"Kind": "Trickle", "BytesPerSecond": 400_000, "Count": 1}]

    response, data = download(een_client, item["mp4Url"], Range="bytes=0-199999")

    assert response.status_code == 206 and data == full[:200_000]
    assert een_sim.faults()["Downloads"] == []  # used up by that download


def test_media_urls_expire_on_the_simulator_clock(een_client, een_sim, mp4):
    camera_id, item = mp4
    een_sim.configure(MediaUrlTtlSeconds=60)
    start, end = parse_time(item["startTimestamp"]), parse_time(item["endTimestamp"])
    url = een_client.media(camera_id, start, end).json()["results"][0]["mp4Url"]
    een_sim.advance_clock(61)

    expired = een_client.get(url)

    assert expired.status_code == 403
    assert expired.json()["status"] == "permissionDenied"


def test_expiring_all_media_urls_and_tampering_give_403(een_client, een_sim, mp4):
    _, item = mp4
    tampered = item["mp4Url"].replace("deviceId=", "deviceId=1")

    assert een_client.get(tampered).status_code == 403
    een_sim.expire_media_urls()
    assert een_client.get(item["mp4Url"]).status_code == 403


def test_mp4_needs_the_bearer_token(een_client, mp4):
    _, item = mp4

    assert requests.get(item["mp4Url"], timeout=10).status_code == 401


# -- images --------------------------------------------------------------------------------------


def test_live_image_is_a_jpeg_with_its_frame_time(een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True)["Id"]

    response = een_client.get("/media/liveImage.jpeg", {"deviceId": camera_id, "type": "preview"})

    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8" and response.content[-2:] == b"\xff\xd9"
    frame_time = parse_time(response.headers["X-Een-Timestamp"])
    assert abs(frame_time - sim_now(een_sim)) < timedelta(seconds=5)


def test_live_image_of_an_offline_camera_is_503_and_unknown_is_404(een_client, een_sim):
    offline = camera_with(een_sim, Online=False)["Id"]

    unavailable = een_client.get("/media/liveImage.jpeg", {"deviceId": offline, "type": "preview"})
    unknown = een_client.get("/media/liveImage.jpeg", {"deviceId": "10ffffff", "type": "preview"})

    assert unavailable.status_code == 503
    assert unavailable.json()["status"] == "unavailable"
    assert unavailable.json()["details"][0]["reason"] == "deviceUnavailable"
    assert unknown.status_code == 404


def test_recorded_image_is_the_frame_at_or_before_the_time(een_client, een_sim, mp4):
    camera_id, item = mp4
    start = parse_time(item["startTimestamp"])
    inside = start + timedelta(seconds=5, milliseconds=37)
    in_gap = start + timedelta(seconds=25)  # the first interval lasts 20 s

    at = een_client.get(
        "/media/recordedImage.jpeg", {"deviceId": camera_id, "type": "main", "timestamp__lte": een_time(inside)}
    )
    before_gap = een_client.get(
        "/media/recordedImage.jpeg", {"deviceId": camera_id, "type": "preview", "timestamp__lte": een_time(in_gap)}
    )
    after_gap = een_client.get(
        "/media/recordedImage.jpeg", {"deviceId": camera_id, "type": "preview", "timestamp__gte": een_time(in_gap)}
    )

    assert at.status_code == 200 and at.content[:2] == b"\xff\xd8"
    assert parse_time(at.headers["X-Een-Timestamp"]) == start + timedelta(seconds=5)
    assert parse_time(before_gap.headers["X-Een-Timestamp"]) == start + timedelta(seconds=19, milliseconds=900)
    assert parse_time(after_gap.headers["X-Een-Timestamp"]) == start + timedelta(seconds=50)


def test_recorded_image_without_footage_is_404(een_client, een_sim):
    silent = camera_with(een_sim, HasRecordings=False)["Id"]
    at = een_time(sim_now(een_sim) - timedelta(hours=1))

    response = een_client.get("/media/recordedImage.jpeg", {"deviceId": silent, "type": "main", "timestamp__lte": at})

    assert response.status_code == 404
    assert response.json()["status"] == "notFound"


def test_main_recorded_images_are_rate_limited_with_429_and_no_retry_after(een_client, een_sim, mp4):
    camera_id, item = mp4
    een_sim.configure(RecordedImageRatePerSecond=2)
    params = {"deviceId": camera_id, "type": "main", "timestamp__lte": item["endTimestamp"]}

    statuses = [een_client.get("/media/recordedImage.jpeg", params) for _ in range(3)]

    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].json()["status"] == "tooManyRequests"
    assert statuses[2].json()["details"][0]["reason"] == "tooManyRequests"
    assert "Retry-After" not in statuses[2].headers


def test_injected_faults_answer_in_een_style(een_client, een_sim):
    een_sim.inject_fault("list_cameras", 429, count=2)
    een_sim.inject_fault("client_settings", 503, retry_after=7)

    throttled = [een_client.get("/cameras") for _ in range(3)]
    settings = een_client.get(een_client.een.api_url + API + "/clientSettings")

    assert [r.status_code for r in throttled] == [429, 429, 200]
    assert throttled[0].json()["code"] == 429 and "Retry-After" not in throttled[0].headers
    assert settings.status_code == 503 and settings.headers["Retry-After"] == "7"
    assert settings.json()["status"] == "unavailable"


# -- unclipped intervals, snapshots that name their camera and time, rate cap, chosen ids ------------


def test_unclipped_mode_lists_whole_recordings_and_streams_them_whole(een_client, een_sim, mp4):
    camera_id, first = mp4  # the first recording lasts 20 s
    start = parse_time(first["startTimestamp"])
    window = (start + timedelta(seconds=5), start + timedelta(seconds=10))
    een_sim.configure(UnclippedMediaIntervals=True)

    items = een_client.media(camera_id, *window).json()["results"]
    data = download(een_client, items[0]["mp4Url"])[1]

    assert [(i["startTimestamp"], i["endTimestamp"]) for i in items] == [
        (first["startTimestamp"], first["endTimestamp"])
    ]
    assert footage_of(data).describes(camera_id, ms(start), ms(start + timedelta(seconds=20))) == ""
    een_sim.configure(UnclippedMediaIntervals=False)
    clipped = een_client.media(camera_id, *window).json()["results"]
    assert [(i["startTimestamp"], i["endTimestamp"]) for i in clipped] == [(een_time(window[0]), een_time(window[1]))]


def live_image(client, camera_id):
    response = client.get("/media/liveImage.jpeg", {"deviceId": camera_id, "type": "preview"})
    assert response.status_code == 200, response.text
    return response


def test_snapshots_name_their_camera_and_the_time_the_header_reports(een_client, een_sim):
    first, second = [c["Id"] for c in een_sim.cameras() if c["Online"]][:2]

    one, other = live_image(een_client, first), live_image(een_client, second)
    een_sim.advance_clock(60)
    later = live_image(een_client, first)

    for camera_id, response in ((first, one), (second, other), (first, later)):
        stamp = ms(response.headers["X-Een-Timestamp"])
        assert read_jpeg_comment(response.content) == (camera_tag(camera_id), stamp)
    assert len({one.content, other.content, later.content}) == 3


def test_a_recorded_image_names_the_frame_time_it_reports(een_client, een_sim, mp4):
    camera_id, item = mp4
    asked = parse_time(item["startTimestamp"]) + timedelta(seconds=3, milliseconds=456)

    response = een_client.get(
        "/media/recordedImage.jpeg", {"deviceId": camera_id, "type": "main", "timestamp__lte": een_time(asked)}
    )

    frame = ms(response.headers["X-Een-Timestamp"])
    assert frame == ms(asked) // 100 * 100
    assert read_jpeg_comment(response.content) == (camera_tag(camera_id), frame)


def test_snapshot_size_is_set_globally_or_per_camera(een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True)["Id"]
    big = een_sim.add_camera(Name="Big", SnapshotBytes=300_000)["Id"]
    een_sim.configure(SnapshotBytes=200 * 1024)

    padded, own = live_image(een_client, camera_id).content, live_image(een_client, big).content

    assert len(padded) == 200 * 1024 and len(own) == 300_000
    assert padded[:2] == b"\xff\xd8" and padded[-2:] == b"\xff\xd9"
    assert read_jpeg_comment(padded)[0] == camera_tag(camera_id)


def test_the_download_rate_cap_is_a_setting_that_keeps_every_byte(een_client, een_sim, mp4):
    """The pacing itself is checked with an injected clock (test_vms_sim_streams.py)."""
    _, item = mp4
    _, full = download(een_client, item["mp4Url"], Range="bytes=0-999999")
    assert een_sim.configure(DownloadBytesPerSecond=2_000_000)["DownloadBytesPerSecond"] == 2_000_000

    response, data = download(een_client, item["mp4Url"], Range="bytes=0-999999")

    assert response.status_code == 206 and data == full
    assert een_sim.config()["DownloadBytesPerSecond"] == 2_000_000  # a setting, not a fault: it stays
    assert een_sim.configure(DownloadBytesPerSecond=0)["DownloadBytesPerSecond"] == 0


@pytest.mark.parametrize("camera_id", ["../x", "cam/1", "cam\\1", "tab\tand\x01bell", "caméra-东", "x" * 300])
def test_cameras_with_chosen_ids_are_served_like_any_other(een_client, een_sim, camera_id):
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=1)
    end = start + timedelta(seconds=10)
    added = een_sim.add_camera(Id=camera_id, Name="Odd", Recordings=[[een_time(start), een_time(end)]])
    een_sim.set_recordings(camera_id, [(start, end)])

    items = een_client.media(camera_id, start, end).json()["results"]
    data = download(een_client, items[0]["mp4Url"])[1]
    image = live_image(een_client, camera_id).content

    assert added["Id"] == camera_id and items[0]["deviceId"] == camera_id
    assert footage_of(data).describes(camera_id, ms(start), ms(end)) == ""
    assert read_jpeg_comment(image)[0] == camera_tag(camera_id)
    assert een_sim.recordings(camera_id, start, end) == [[een_time(start), een_time(end)]]
    een_sim.remove_camera(camera_id)
    assert een_client.media(camera_id, start, end).status_code == 404
