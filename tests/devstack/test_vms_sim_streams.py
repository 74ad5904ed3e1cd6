"""Deterministic streams: bytes, sizes and digests, generation speed, and serving speed over HTTP."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

from devstack.vms_sim import stream_sha256, stream_size
from devstack.vms_sim.streams import CHUNK, FTYP, ConcatStream, SyntheticStream, recording_stream
from tests.devstack.vms_conftest import camera_with, hour_floor, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]

GIB = 1 << 30


def best_rate(action, size: int, tries: int = 3) -> float:
    """Bytes per second of the fastest of a few runs (a busy CI machine should not fail the test)."""
    best = 0.0
    for _ in range(tries):
        started = time.perf_counter()
        action()
        best = max(best, size / (time.perf_counter() - started))
    return best


def test_streams_start_with_an_ftyp_box_and_are_deterministic():
    stream = SyntheticStream("camera|1|2", 3 * CHUNK + 777)
    data = b"".join(stream.iter_range(0, stream.size))

    assert data[:24] == FTYP and data[4:8] == b"ftyp" and data[8:12] == b"isom"
    assert len(data) == stream.size
    assert data == b"".join(SyntheticStream("camera|1|2", 3 * CHUNK + 777).iter_range(0, stream.size))
    assert data[24:4096] != b"".join(SyntheticStream("camera|1|3", 4096).iter_range(24, 4096))
    assert data[CHUNK : CHUNK + 4096] != data[2 * CHUNK : 2 * CHUNK + 4096]  # chunks vary


def test_any_range_equals_the_slice_of_the_whole():
    stream = SyntheticStream("k", 2 * CHUNK + 50)
    data = b"".join(stream.iter_range(0, stream.size))

    for start, end in [(0, 1), (3, 30), (23, 25), (CHUNK - 5, CHUNK + 5), (CHUNK, 2 * CHUNK + 50), (100, 99)]:
        assert b"".join(stream.iter_range(start, end)) == data[start:end]


def test_concatenated_streams_are_their_parts_back_to_back():
    first, second = SyntheticStream("a", CHUNK + 10), SyntheticStream("b", 5000)
    both = ConcatStream((first, second))
    whole = b"".join(both.iter_range(0, both.size))

    assert whole == b"".join(first.iter_range(0, first.size)) + b"".join(second.iter_range(0, second.size))
    assert b"".join(both.iter_range(CHUNK, CHUNK + 100)) == whole[CHUNK : CHUNK + 100]


def test_size_and_sha256_functions_take_datetimes_strings_or_milliseconds():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(seconds=4)
    stream = recording_stream("1000a1b2", int(start.timestamp() * 1000), int(end.timestamp() * 1000), 2000)

    assert stream_size("1000a1b2", start, end) == 4 * 250_000 == stream.size
    assert stream_size("1000a1b2", start, end, bitrate_kbps=8000) == 4 * 1_000_000
    digest = hashlib.sha256(b"".join(stream.iter_range(0, stream.size))).hexdigest()
    assert stream_sha256("1000a1b2", start, end) == digest
    assert stream_sha256("1000a1b2", "2026-01-01T00:00:00Z", "2026-01-01T00:00:04.000+00:00") == digest


def test_generation_runs_faster_than_1_5_gb_per_second():
    stream = SyntheticStream("speed", GIB)

    def generate() -> None:
        for _ in stream.iter_range(0, stream.size):
            pass

    assert best_rate(generate, GIB) >= 1.5e9


def test_a_multi_gigabyte_window_is_never_materialised(een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=0)["Id"]
    end = hour_floor(sim_now(een_sim))

    size = stream_size(camera_id, end - timedelta(hours=8), end)

    assert size == 8 * 3600 * 250_000  # 7.2 GB at 2000 kbit/s, computed without generating anything


def test_serving_sustains_500_mb_per_second_to_a_local_client(een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=0)["Id"]
    end = hour_floor(sim_now(een_sim))
    url = een_client.media(camera_id, end - timedelta(hours=1), end).json()["results"][0]["mp4Url"]
    size = 512 << 20

    def fetch() -> None:
        with een_client.get(url, headers={"Range": f"bytes=0-{size - 1}"}, stream=True) as response:
            received = sum(len(piece) for piece in response.iter_content(CHUNK))
        assert received == size

    assert best_rate(fetch, size) >= 500e6
