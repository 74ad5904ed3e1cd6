"""The rules of work items that need no stack: names, segments, outcomes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from shared.agent.jobs.media import segments
from shared.agent.states import FailureKind, FileKind, FileState, ItemKind, ItemState
from shared.agent.work.completion import choose_outcome
from shared.agent.work.ledger import FileEntry, Plan, WorkItem
from shared.agent.work.naming import media_name, safe_camera, thumbnail_name
from shared.vms.base import Interval

T0 = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
UNSAFE_IDS = ["../x", "cam/1", "cam\\1", "a\x00b\nc", "caméra-é", "📷", "x" * 300, "..", "", "a b?c#d%e"]


@pytest.mark.parametrize("camera_id", UNSAFE_IDS)
def test_any_camera_id_gives_a_safe_bounded_file_name(camera_id):
    name = media_name(camera_id, T0, T0 + timedelta(minutes=15))
    assert "/" not in name and "\\" not in name and ".." not in name.replace(".mp4", "")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert len(name) <= 120


def test_ids_that_differ_only_in_unsafe_characters_get_different_names():
    names = {safe_camera(camera_id) for camera_id in ["cam/1", "cam\\1", "cam_1", "cam 1", "cam?1"]}
    assert len(names) == 5
    assert safe_camera("1000a1b2") == "1000a1b2"  # a plain id is kept as it is
    assert safe_camera("x" * 300) != safe_camera("x" * 299)


def test_names_carry_the_exact_times_with_milliseconds_when_there_are_some():
    assert media_name("c", T0, T0 + timedelta(minutes=15)) == "c_20261130T160000Z_20261130T161500Z.mp4"
    assert thumbnail_name("c", T0 + timedelta(milliseconds=250)) == "c_20261130T160000.250Z.jpg"


def test_segments_are_cut_at_wall_clock_multiples_and_cover_the_interval_exactly():
    interval = Interval(T0 + timedelta(minutes=7, seconds=30), T0 + timedelta(minutes=52))
    pieces = segments(interval, timedelta(minutes=15))
    assert [(p.start.minute, p.start.second) for p in pieces] == [(7, 30), (15, 0), (30, 0), (45, 0)]
    assert pieces[0].start == interval.start and pieces[-1].end == interval.end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert all(p.duration <= timedelta(minutes=15) for p in pieces)
    assert segments(Interval(T0, T0 + timedelta(hours=2)), timedelta(minutes=15)) == [
        Interval(T0 + timedelta(minutes=15 * n), T0 + timedelta(minutes=15 * (n + 1))) for n in range(8)
    ]


def _item(
    state: ItemState, *, delivered: int = 0, missing=(), failure: FailureKind | None = None, error: str = ""
) -> WorkItem:
    files = tuple(
        FileEntry(f"f{n}", FileKind.MEDIA, {}, FileState.DELIVERED, f"id{n}", 10, "0" * 64) for n in range(delivered)
    )
    return WorkItem("job", "g", f"i{state}{delivered}", ItemKind.MEDIA_SEGMENT, camera_id="cam", start=T0, end=T0,
                    state=state, files=files, missing=tuple(missing), failure=failure, last_error=error)  # fmt: skip


def test_the_outcome_follows_what_was_delivered_and_what_is_missing():
    plan = Plan("job", "g", "mediarequest")
    assert choose_outcome(plan, [_item(ItemState.DELIVERED, delivered=1)]) == ("Completed", None)
    state, message = choose_outcome(
        plan, [_item(ItemState.DELIVERED, delivered=1), _item(ItemState.MISSING, missing=["cam gap"])]
    )
    assert state == "PartiallyCompleted" and "cam gap" in message
    gapped = Plan("job", "g", "mediarequest", gaps_total=1)
    state, message = choose_outcome(gapped, [], ["cam 16:00 (no recording)"])
    assert state == "Failed" and message.startswith("Video unavailable") and "16:00" in message
    transient = _item(ItemState.FAILED, failure=FailureKind.TRANSIENT, error="VMS down")
    assert choose_outcome(plan, [transient])[0] == "Released"  # nothing delivered only because of an outage
    permanent = _item(ItemState.FAILED, failure=FailureKind.PERMANENT, error="refused")
    assert choose_outcome(plan, [transient, permanent])[0] == "Failed"
    timed_out = _item(ItemState.FAILED, failure=FailureKind.TIMEOUT, error="export not ready")
    assert choose_outcome(plan, [timed_out])[0] == "Failed"  # waiting longer would not help: no release loop


def test_the_outcome_message_counts_what_it_does_not_list():
    many = [f"cam {n} (no recording)" for n in range(500)]
    plan = Plan("job", "g", "mediarequest", gaps_total=500)
    state, message = choose_outcome(plan, [_item(ItemState.DELIVERED, delivered=1)], many)
    assert state == "PartiallyCompleted" and "and 480 more" in message and len(message) <= 1000
