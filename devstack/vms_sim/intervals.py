"""Half-open millisecond intervals [start, end): clipping, subtracting and finding the holes."""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[int, int]


def clip(intervals: Iterable[Interval], start: int, end: int) -> list[Interval]:
    """The parts of sorted, non-overlapping intervals that lie within [start, end)."""
    return [(max(s, start), min(e, end)) for s, e in intervals if s < end and e > start]


def normalise(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals merged and empty ones dropped."""
    merged: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def close_seams(intervals: Iterable[Interval], seam: int) -> list[Interval]:
    """Sorted intervals with gaps shorter than `seam` closed (such a gap is a seam, not missing footage)."""
    merged: list[Interval] = []
    for s, e in normalise(intervals):
        if merged and s - merged[-1][1] < seam:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def subtract(intervals: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """`intervals` minus `holes` (both sorted and non-overlapping)."""
    result: list[Interval] = []
    hole_list = list(holes)
    for s, e in intervals:
        cursor = s
        for hs, he in hole_list:
            if he <= cursor or hs >= e:
                continue
            if hs > cursor:
                result.append((cursor, hs))
            cursor = max(cursor, he)
        if cursor < e:
            result.append((cursor, e))
    return result


def holes(intervals: Iterable[Interval], start: int, end: int) -> list[Interval]:
    """What of [start, end) the intervals do not cover."""
    return subtract([(start, end)], clip(intervals, start, end)) if end > start else []


def total(intervals: Iterable[Interval]) -> int:
    return sum(e - s for s, e in intervals)
