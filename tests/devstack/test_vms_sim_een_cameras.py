"""EEN simulator: camera discovery, cursor pagination, includes."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["tests.devstack.vms_conftest"]

INCLUDE = "devicePosition,status,timeZone"


def all_pages(client, page_size=None):
    pages, token = [], None
    while True:
        params = {"include": INCLUDE}
        if page_size is not None:
            params["pageSize"] = page_size
        if token:
            params["pageToken"] = token
        response = client.get("/cameras", params)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        token = pages[-1]["nextPageToken"]
        if not token:
            return pages
        assert len(pages) < 50, "pagination does not end"


@pytest.mark.parametrize(("count", "page_size", "sizes"), [(0, None, [0]), (1, None, [1]), (100, None, [100])])
def test_small_accounts_fit_in_one_page(een_client, een_sim, count, page_size, sizes):
    een_sim.seed_cameras(count)

    pages = all_pages(een_client, page_size)

    assert [len(page["results"]) for page in pages] == sizes
    assert pages[-1]["nextPageToken"] == "" and pages[0]["prevPageToken"] == ""
    assert all(page["totalSize"] == count for page in pages)


def test_1201_cameras_page_through_with_the_account_total(een_client, een_sim):
    een_sim.seed_cameras(1201)

    pages = all_pages(een_client, 500)
    ids = [camera["id"] for page in pages for camera in page["results"]]

    assert [len(page["results"]) for page in pages] == [500, 500, 201]
    assert len(set(ids)) == 1201 and all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids)
    assert all(page["totalSize"] == 1201 for page in pages)
    assert pages[1]["prevPageToken"] and not pages[-1]["nextPageToken"]


def test_default_page_size_is_100(een_client, een_sim):
    een_sim.seed_cameras(101)

    assert [len(page["results"]) for page in all_pages(een_client)] == [100, 1]


@pytest.mark.parametrize(("asked", "served"), [("0", 1), ("-5", 1), ("1000", 500), ("250", 250)])
def test_out_of_range_page_sizes_are_clamped_not_refused(een_client, een_sim, asked, served):
    een_sim.seed_cameras(600)

    response = een_client.get("/cameras", {"pageSize": asked})

    assert response.status_code == 200
    assert len(response.json()["results"]) == served


def test_last_page_token_can_be_null_instead_of_empty(een_client, een_sim):
    een_sim.configure(NextPageOnLast="null")

    assert een_client.get("/cameras").json()["nextPageToken"] is None


def test_a_bad_page_token_is_a_validation_error(een_client):
    response = een_client.get("/cameras", {"pageToken": "garbage!"})

    assert response.status_code == 400
    assert response.json()["status"] == "invalidArgument"


def test_includes_add_status_time_zone_and_known_position(een_client, een_sim):
    cameras = {c["id"]: c for c in een_client.get("/cameras", {"include": INCLUDE}).json()["results"]}
    summaries = {c["Id"]: c for c in een_sim.cameras()}
    plain = een_client.get("/cameras").json()["results"][0]

    assert set(plain) == {"id", "accountId", "name", "bridgeId", "locationId", "multiCameraId", "createTimestamp"}
    assert len(cameras) == 12
    for camera_id, camera in cameras.items():
        summary = summaries[camera_id]
        assert camera["name"] == summary["Name"]
        assert camera["status"] == {"connectionStatus": "online" if summary["Online"] else "deviceOffline"}
        assert camera["timeZone"] == {"zone": summary["TimeZone"]}
        position = camera.get("devicePosition", {})
        assert ("latitude" in position) == summary["HasPosition"]
        assert None not in position.values()
    assert sum(not c["Online"] for c in summaries.values()) == 1  # every 7th
    assert sum(not c["HasPosition"] for c in summaries.values()) == 2  # every 5th
    assert any("devicePosition" not in c for c in cameras.values())
    assert any("devicePosition" in c and "latitude" not in c["devicePosition"] for c in cameras.values())


def test_unknown_include_is_refused(een_client):
    assert een_client.get("/cameras", {"include": "status,bogus"}).status_code == 400


def test_control_api_adds_and_removes_cameras(een_client, een_sim):
    added = een_sim.add_camera(Name="Added Camera", Online=False)
    names = [c["name"] for c in een_client.get("/cameras").json()["results"]]
    een_sim.remove_camera(added["Id"])

    assert "Added Camera" in names
    assert een_client.get("/cameras").json()["totalSize"] == 12


def test_seeding_is_deterministic(een_sim):
    first = een_sim.seed_cameras(20, seed="site-a")
    again = een_sim.seed_cameras(20, seed="site-a")
    other = een_sim.seed_cameras(20, seed="site-b")

    assert first == again
    assert [c["Id"] for c in first] != [c["Id"] for c in other]


def test_added_cameras_are_online_and_recording_unless_told_and_placed_only_if_given(een_sim):
    added = [een_sim.add_camera() for _ in range(12)]
    placed = een_sim.add_camera(Latitude=45.5, Longitude=-73.6)
    silent = een_sim.add_camera(Online=False, Recordings="none", GapMinutesPerHour=0)

    assert all(c["Online"] and c["HasRecordings"] and not c["HasPosition"] for c in added)
    assert placed["HasPosition"]
    assert (silent["Online"], silent["HasRecordings"]) == (False, False)
