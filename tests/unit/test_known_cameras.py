"""A worker remembers the VMS's camera ids for a minute, for the check every thumbnail job makes; only a
positive answer ever comes from memory, so no job is canceled for a camera added since the last listing."""

from __future__ import annotations

from collections.abc import Iterator

from shared.agent.jobs.cameras import KnownCameras
from shared.vms.base import Camera
from tests.fakes.agent import FakeVms


class CountingVms(FakeVms):
    def __init__(self, cameras: list[str]) -> None:
        super().__init__(cameras)
        self.listings = 0

    def list_cameras(self) -> Iterator[Camera]:
        self.listings += 1
        return super().list_cameras()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_known_cameras_are_listed_once_a_minute_and_a_new_camera_is_never_taken_for_unknown():
    vms, clock = CountingVms(["a", "b"]), Clock()
    known = KnownCameras(seconds=60, clock=clock)

    assert known.unknown(vms, ["a"]) == [] and vms.listings == 1
    assert known.unknown(vms, ["a", "b"]) == [] and vms.listings == 1  # from memory
    vms.cameras.append("c")  # added in the VMS since
    assert known.unknown(vms, ["c"]) == [] and vms.listings == 2  # not remembered: listed again, found
    assert known.unknown(vms, ["x", "a"]) == ["x"] and vms.listings == 3  # unknown only after a fresh listing
    clock.now += 61
    assert known.unknown(vms, ["a"]) == [] and vms.listings == 4  # a minute on: listed again


def test_another_vms_adapter_is_listed_afresh():
    known = KnownCameras()
    first, second = CountingVms(["a"]), CountingVms(["b"])
    assert known.unknown(first, ["a"]) == []
    assert known.unknown(second, ["a"]) == ["a"] and second.listings == 1
