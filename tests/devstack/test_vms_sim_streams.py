"""Served video is footage: bytes, sizes and digests, any range; how a download is paced and cut off.

How fast footage is generated and served is measured by `make bench` (bench/simulators.py, bench/vms.py).
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from devstack.footage import FootageReader, footage, footage_size
from devstack.vms_sim import stream_sha256, stream_size
from devstack.vms_sim.faults import DownloadBehaviour
from devstack.vms_sim.serving import body_pieces
from devstack.vms_sim.streams import CHUNK, ConcatStream, FootageStream, recording_stream
from tests.devstack.vms_conftest import camera_with, hour_floor, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]

GIB = 1 << 30
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def whole(stream) -> bytes:
    return b"".join(stream.iter_range(0, stream.size))


def identity(data: bytes):
    reader = FootageReader()
    reader.feed(data)
    return reader.result()


def test_a_stream_is_exactly_the_footage_of_its_camera_and_window_in_bounded_pieces():
    stream = FootageStream("cam-1", T0 + 250, T0 + 9_900, 9000)
    pieces = list(stream.iter_range(0, stream.size))

    assert b"".join(pieces) == b"".join(footage("cam-1", T0 + 250, T0 + 9_900, 9000))
    assert len(b"".join(pieces)) == stream.size == footage_size(T0 + 250, T0 + 9_900, 9000)
    assert max(len(p) for p in pieces) <= CHUNK
    assert identity(b"".join(pieces)).describes("cam-1", T0 + 250, T0 + 9_900) == ""


def test_any_range_equals_the_slice_of_the_whole():
    stream = FootageStream("k", T0, T0 + 5_500, 4000)  # ~2.7 MB: frames of 500 kB, pieces of 1 MiB
    data = whole(stream)

    for start, end in [(0, 1), (3, 30), (39, 41), (CHUNK - 5, CHUNK + 5), (CHUNK, stream.size), (100, 99)]:
        assert b"".join(stream.iter_range(start, end)) == data[start:end]


def test_filler_is_placeholder_frames_for_the_same_time():
    filler = FootageStream("cam", T0, T0 + 3000, 100, filler=True)

    found = identity(whole(filler))

    assert (found.start_ms, found.end_ms, found.filler_frames) == (T0, T0 + 3000, 3)
    assert "placeholders" in found.describes("cam", T0, T0 + 3000)


def test_concatenated_streams_are_their_parts_back_to_back():
    first, second = FootageStream("a", T0, T0 + 5000, 2000), FootageStream("a", T0 + 5000, T0 + 5100, 2000)
    both = ConcatStream((first, second))
    data = whole(both)

    assert data == whole(first) + whole(second)
    assert b"".join(both.iter_range(CHUNK, CHUNK + 100)) == data[CHUNK : CHUNK + 100]
    assert identity(data).describes("a", T0, T0 + 5100) == ""


def test_size_and_sha256_functions_take_datetimes_strings_or_milliseconds():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(seconds=4)
    stream = recording_stream("1000a1b2", T0, T0 + 4000, 2000)

    assert stream_size("1000a1b2", start, end) == 4 * 250_000 == stream.size
    assert stream_size("1000a1b2", start, end, bitrate_kbps=8000) == 4 * 1_000_000
    digest = hashlib.sha256(whole(stream)).hexdigest()
    assert stream_sha256("1000a1b2", start, end) == digest
    assert stream_sha256("1000a1b2", "2026-01-01T00:00:00Z", "2026-01-01T00:00:04.000+00:00") == digest


def test_a_multi_gigabyte_window_is_never_materialised(een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=0)["Id"]
    end = hour_floor(sim_now(een_sim))

    size = stream_size(camera_id, end - timedelta(hours=8), end)

    assert size == 8 * 3600 * 250_000  # 7.2 GB at 2000 kbit/s, computed without generating anything


class FakeClock:
    """The serving loop's clock and sleep: time moves only when it sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def served(stream, behaviour: DownloadBehaviour, clock: FakeClock, start: int = 0, end: int | None = None):
    """(bytes sent so far, fake time) after every piece, and the bytes."""
    progress, data = [], bytearray()
    for piece in body_pieces(
        stream, start, stream.size if end is None else end, behaviour, clock=clock, sleep=clock.sleep
    ):
        data += piece
        progress.append((len(data), clock.now - 100.0))
    return progress, bytes(data)


def test_a_trickle_sends_small_pieces_at_its_rate():
    stream = FootageStream("slow", T0, T0 + 2_000, 2000)  # 500 kB
    clock = FakeClock()

    progress, data = served(stream, DownloadBehaviour(trickle_bytes_per_second=400_000), clock, 0, 200_000)

    assert data == whole(stream)[:200_000]
    sizes = [later - earlier for (earlier, _), (later, _) in itertools.pairwise([(0, 0.0), *progress])]
    assert max(sizes) == 40_000  # a tenth of a second's worth at a time
    assert sum(clock.slept) == pytest.approx(200_000 / 400_000)
    assert all(sent <= 400_000 * elapsed + 1 for sent, elapsed in progress)  # never ahead of the rate


def test_the_rate_cap_holds_a_connection_to_its_rate_without_cutting_pieces():
    stream = FootageStream("capped", T0, T0 + 4_000, 4000)  # 2 MB
    clock = FakeClock()

    progress, data = served(stream, DownloadBehaviour(max_bytes_per_second=2_000_000), clock)

    assert data == whole(stream)
    assert [sent for sent, _ in progress] == list(
        itertools.accumulate(len(p) for p in stream.iter_range(0, stream.size))
    )
    assert progress[-1][1] == pytest.approx(stream.size / 2_000_000)
    assert all(sent <= 2_000_000 * elapsed + 1 for sent, elapsed in progress)


def test_a_download_without_a_cap_or_trickle_never_waits():
    stream = FootageStream("fast", T0, T0 + 4_000, 4000)
    clock = FakeClock()

    _, data = served(stream, DownloadBehaviour(), clock)

    assert data == whole(stream) and clock.slept == []


def test_a_drop_sends_exactly_the_bytes_before_it_then_breaks_the_connection():
    stream = FootageStream("dropped", T0, T0 + 4_000, 4000)
    pieces = body_pieces(stream, 0, stream.size, DownloadBehaviour(drop_after_bytes=CHUNK + 10))
    received = bytearray()

    with pytest.raises(ConnectionAbortedError):
        for piece in pieces:
            received += piece

    assert bytes(received) == whole(stream)[: CHUNK + 10]
