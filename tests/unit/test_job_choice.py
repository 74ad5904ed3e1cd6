"""Which offered jobs a poll takes (`shared.agent.locks.poller.choose`): oldest first, within capacity, with a
share reserved for small jobs so they never starve behind long media requests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from shared.agent.locks.poller import choose
from shared.registry.contract import Job

T0 = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


def job(job_id: str, job_type: str = "mediarequest", minute: int | None = 0) -> Job:
    """A job offered by the Registry, created `minute` minutes after T0 (None: no CreatedUtc)."""
    fields: dict[str, object] = {"Id": job_id, "Type": job_type}
    if minute is not None:
        fields["CreatedUtc"] = (T0 + timedelta(minutes=minute)).isoformat()
    return Job.model_validate(fields)


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


def test_the_oldest_jobs_are_taken_first_and_returned_oldest_first():
    offered = [job("c", minute=3), job("a", minute=1), job("d", minute=4), job("b", minute=2)]

    assert ids(choose(offered, 2)) == ["a", "b"]
    assert ids(choose(offered, 10)) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("capacity", [0, -1, -5])
def test_no_capacity_takes_nothing(capacity):
    assert choose([job("a"), job("b", "thumbnail")], capacity) == []


def test_nothing_offered_takes_nothing():
    assert choose([], 5) == []


def test_never_more_than_the_capacity_or_the_offer_each_job_once_and_the_share_always_kept():
    for capacity, small, media in itertools.product(range(1, 13), [0, 1, 3, 12], [0, 1, 4, 12]):
        offered = [job(f"m{n:02d}", minute=n) for n in range(media)]
        offered += [job(f"s{n:02d}", "thumbnail", minute=100 + n) for n in range(small)]

        chosen = choose(offered, capacity)

        case = f"capacity {capacity}, {small} small, {media} media"
        assert len(chosen) == min(capacity, media + small), case
        assert len(set(ids(chosen))) == len(chosen), case
        assert sum(j.type == "thumbnail" for j in chosen) >= min(small, max(1, capacity // 4)), case


@pytest.mark.parametrize(
    ("capacity", "reserved"), [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (7, 1), (8, 2), (11, 2), (12, 3), (20, 5)]
)
def test_a_quarter_of_the_capacity_at_least_one_slot_is_kept_for_newer_small_jobs(capacity, reserved):
    media = [job(f"m{n:02d}", minute=n) for n in range(30)]  # older than every small job
    small = [job(f"t{n:02d}", "thumbnail" if n % 2 else "discovery", minute=60 + n) for n in range(10)]

    chosen = choose(media + small, capacity)

    assert ids([j for j in chosen if j.type != "mediarequest"]) == ids(small[:reserved])  # the oldest small ones
    assert ids([j for j in chosen if j.type == "mediarequest"]) == ids(media[: capacity - reserved])


def test_unused_reserved_slots_go_to_media_requests():
    media = [job(f"m{n}", minute=n) for n in range(10)]

    assert ids(choose(media, 8)) == ids(media[:8])  # no small job offered: nothing held back
    chosen = choose([*media, job("t", "thumbnail", minute=50)], 8)
    assert ids(chosen) == [*ids(media[:7]), "t"]  # one small job for a share of two: the other slot is media's


def test_small_jobs_older_than_the_media_requests_are_not_limited_to_their_share():
    small = [job(f"t{n}", "thumbnail", minute=n) for n in range(6)]
    media = [job(f"m{n}", minute=10 + n) for n in range(6)]

    assert ids(choose(media + small, 4)) == ids(small[:4])


def test_equal_creation_times_are_ordered_by_job_id():
    offered = [job(name, minute=7) for name in ("b2", "a9", "c1", "a1")]

    for permutation in itertools.permutations(offered):
        assert ids(choose(list(permutation), 3)) == ["a1", "a9", "b2"]


def test_a_reserved_small_job_is_taken_before_an_equally_old_media_request_with_a_smaller_id():
    offered = [job("a-media", minute=5), job("z-media", minute=5), job("m-thumb", "thumbnail", minute=5)]

    assert ids(choose(offered, 1)) == ["m-thumb"]
    assert ids(choose(offered, 2)) == ["a-media", "m-thumb"]


def test_jobs_without_a_creation_time_count_as_oldest_and_are_ordered_by_id():
    offered = [job("dated", minute=0), job("undated-b", minute=None), job("undated-a", minute=None)]

    assert ids(choose(offered, 2)) == ["undated-a", "undated-b"]
    assert ids(choose(offered, 5)) == ["undated-a", "undated-b", "dated"]


def test_an_undated_small_job_is_the_first_small_job_reserved():
    offered = [job("m", minute=0), job("t-dated", "thumbnail", minute=1), job("t-undated", "discovery", minute=None)]

    assert ids(choose(offered, 1)) == ["t-undated"]


def test_the_creation_times_offset_is_respected():
    utc = Job.model_validate({"Id": "utc", "Type": "mediarequest", "CreatedUtc": "2026-11-24T05:30:00Z"})
    earlier = Job.model_validate({"Id": "zone", "Type": "mediarequest", "CreatedUtc": "2026-11-24T06:00:00+01:00"})

    assert ids(choose([utc, earlier], 1)) == ["zone"]  # 05:00Z: older, though its wall-clock text is later
