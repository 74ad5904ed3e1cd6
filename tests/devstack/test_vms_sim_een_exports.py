"""EEN simulator: export jobs on the simulator clock, in both state vocabularies, and their downloads."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from devstack.footage import FootageReader
from tests.devstack.vms_conftest import camera_with, een_time, hour_floor, parse_time, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]

VOCABULARIES = {
    "spec": ("pending", "started", "success", "failure"),
    "notes": ("pending", "processing", "done", "failed"),
}


def export_body(camera_id, start, end, name="incident", auto_delete=False):
    return {
        "deviceId": camera_id,
        "type": "video",
        "period": {"startTimestamp": een_time(start), "endTimestamp": een_time(end)},
        "info": {"name": name, "directory": "/exports"},
        "autoDelete": auto_delete,
    }


def ms(moment):
    return int(moment.timestamp() * 1000)


@pytest.fixture
def recorded(een_sim):
    """A camera with two 30 s recordings separated by a 20 s gap, and the 80 s window around them."""
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True)["Id"]
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=1)
    intervals = [(start, start + timedelta(seconds=30)), (start + timedelta(seconds=50), start + timedelta(seconds=80))]
    een_sim.set_recordings(camera_id, intervals)
    return camera_id, start, start + timedelta(seconds=80)


def create(client, body):
    response = client.post("/exports", body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def job(client, job_id):
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("vocabulary", ["spec", "notes"])
def test_export_goes_pending_running_then_succeeds_on_the_clock(een_client, een_sim, recorded, vocabulary):
    pending, running, success, _ = VOCABULARIES[vocabulary]
    een_sim.configure(JobStates=vocabulary, ExportDurationSeconds=20)
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end))

    first = job(een_client, job_id)
    een_sim.advance_clock(11)
    middle = job(een_client, job_id)
    een_sim.advance_clock(10)
    done = job(een_client, job_id)

    assert (first["state"], first["progress"], first["result"]) == (pending, 0, None)
    assert middle["state"] == running and 0 < middle["progress"] < 1
    assert done["state"] == success and done["progress"] == 1 and done["error"] is None
    assert done["id"] == job_id and done["arguments"]["deviceId"] == camera_id
    files = done["result"]["files"]
    assert [f["mimetype"] for f in files] == ["video/mp4", "video/mp4"]  # one file per recorded interval
    assert [f["size"] for f in files] == [30 * 250_000, 30 * 250_000]
    missing = done["detailedState"]["intervals"]["missingIntervals"]
    assert missing == [{"startTimestamp": een_time(start + timedelta(seconds=30)),
                        "endTimestamp": een_time(start + timedelta(seconds=50))}]  # fmt: skip


def test_export_files_download_with_the_advertised_bytes(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end, name="North door"))
    een_sim.advance_clock(25)
    first = job(een_client, job_id)["result"]["files"][0]

    response = een_client.get(first["url"])
    ranged = een_client.get(first["url"], headers={"Range": "bytes=100-"})
    file_id = first["url"].rsplit("/", 1)[1].split(":")[0]
    by_id = een_client.get(f"/files/{file_id}:download")

    assert response.status_code == 200 and response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{first["name"]}"'
    assert first["name"].startswith("North door ") and first["name"].endswith(".mp4")
    assert len(response.content) == first["size"]
    digest = hashlib.sha256(response.content).hexdigest()
    assert digest == een_sim.stream_info_for_url(first["url"])["Sha256"]
    assert digest == een_sim.stream_info(camera_id, start, start + timedelta(seconds=30))["Sha256"]
    assert ranged.status_code == 206 and ranged.content == response.content[100:]
    assert by_id.content == response.content
    reader = FootageReader()
    reader.feed(response.content)
    assert reader.result().describes(camera_id, ms(start), ms(start + timedelta(seconds=30))) == ""


def test_files_are_not_downloadable_before_the_export_succeeds(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end))
    file_url = een_sim.jobs()[0]["Files"][0]["Url"]

    assert een_client.get(file_url).status_code == 404
    een_sim.advance_clock(21)
    assert job(een_client, job_id)["state"] == "success"
    assert een_client.get(file_url).status_code == 200


@pytest.mark.parametrize("vocabulary", ["spec", "notes"])
def test_injected_failure_ends_the_export_in_the_failure_state(een_client, een_sim, recorded, vocabulary):
    failure = VOCABULARIES[vocabulary][3]
    een_sim.configure(JobStates=vocabulary)
    een_sim.fail_exports()
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end))

    een_sim.advance_clock(21)
    failed = job(een_client, job_id)

    assert failed["state"] == failure and failed["progress"] == 0 and failed["result"] is None
    assert failed["error"]["code"] == 500 and failed["error"]["status"] == "internal"


def test_export_of_a_period_without_footage_fails(een_client, een_sim):
    silent = camera_with(een_sim, HasRecordings=False)["Id"]
    end = hour_floor(sim_now(een_sim))
    job_id = create(een_client, export_body(silent, end - timedelta(minutes=5), end))

    een_sim.advance_clock(21)
    failed = job(een_client, job_id)

    assert failed["state"] == "failure" and failed["error"]["status"] == "notFound"


def test_partial_fault_reports_the_second_half_missing(een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=0)["Id"]
    end = hour_floor(sim_now(een_sim)) - timedelta(hours=1)
    start = end - timedelta(minutes=2)
    een_sim.partial_exports()
    job_id = create(een_client, export_body(camera_id, start, end))

    een_sim.advance_clock(21)
    done = job(een_client, job_id)

    assert done["state"] == "success"
    assert [f["size"] for f in done["result"]["files"]] == [60 * 250_000]
    missing = done["detailedState"]["intervals"]["missingIntervals"]
    assert missing == [{"startTimestamp": een_time(start + timedelta(minutes=1)), "endTimestamp": een_time(end)}]


EIGHT_HOURS_AND_A_SECOND = {
    "startTimestamp": "2026-01-01T00:00:00.000+00:00",
    "endTimestamp": "2026-01-01T08:00:01.000+00:00",
}
Z_PERIOD = {"startTimestamp": "2026-01-01T00:00:00.000Z", "endTimestamp": "2026-01-01T01:00:00.000Z"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"period": EIGHT_HOURS_AND_A_SECOND}, "wrongArgumentValue"),
        ({"period": Z_PERIOD}, "wrongArgumentValue"),
        ({"info": {"name": "no/slash", "directory": "/"}}, "wrongArgumentValue"),
        ({"info": {"directory": "/"}}, "missingRequiredArgument"),
        ({"type": "timeLapse"}, "wrongArgumentValue"),
    ],
)
def test_invalid_export_requests_are_400(een_client, een_sim, recorded, change, reason):
    camera_id, start, end = recorded
    body = {**export_body(camera_id, start, end), **change}

    response = een_client.post("/exports", body)

    assert response.status_code == 400
    assert response.json()["details"][0]["reason"] == reason


def test_export_of_an_unknown_camera_is_404(een_client, een_sim, recorded):
    _, start, end = recorded

    assert een_client.post("/exports", export_body("10ffffff", start, end)).status_code == 404


def test_deleting_a_job_removes_it(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end))

    assert een_client.delete(f"/jobs/{job_id}").status_code == 204
    assert een_client.get(f"/jobs/{job_id}").status_code == 404
    assert een_client.delete(f"/jobs/{job_id}").status_code == 404
    assert [j["Deleted"] for j in een_sim.jobs()] == [True]


def test_exports_count_against_the_account(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    een_sim.configure(MaxExports=2)
    first = create(een_client, export_body(camera_id, start, end))
    create(een_client, export_body(camera_id, start, end))

    refused = een_client.post("/exports", export_body(camera_id, start, end))
    een_client.delete(f"/jobs/{first}")

    assert refused.status_code == 429 and refused.json()["details"][0]["reason"] == "quotaExceeded"
    assert een_client.post("/exports", export_body(camera_id, start, end)).status_code == 201


def test_job_timestamps_follow_the_simulator_clock(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    before = sim_now(een_sim)
    job_id = create(een_client, export_body(camera_id, start, end))
    een_sim.advance_clock(3600)

    body = job(een_client, job_id)

    created = parse_time(body["createTimestamp"])
    assert abs(created - before) < timedelta(seconds=5)
    assert parse_time(body["updateTimestamp"]) == created + timedelta(seconds=20)
    assert parse_time(body["expireTimestamp"]) == created + timedelta(days=28)


# -- what an export leaves in the customer's archive ------------------------------------------------


def test_a_deleted_job_leaves_its_files_in_the_archive_until_each_is_deleted_for_good(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end))
    een_sim.advance_clock(21)
    files = job(een_client, job_id)["result"]["files"]
    file_ids = [f["url"].rsplit("/", 1)[1].split(":")[0] for f in files]

    assert een_client.delete(f"/jobs/{job_id}").status_code == 204
    listed = een_client.get("/files", {"directory": "/exports"}).json()
    assert sorted(item["id"] for item in listed["results"]) == sorted(file_ids)
    assert {item["Kind"] for item in een_sim.leftovers()} == {"file"}

    for file_id in file_ids:
        assert een_client.delete(f"/files/{file_id}").status_code == 204  # to the recycle bin
        assert een_client.get(f"/files/{file_id}:download").status_code == 404
    assert {item["Where"] for item in een_sim.leftovers()} == {"recycle bin"}
    for file_id in file_ids:
        assert een_client.delete(f"/deletedFiles/{file_id}").status_code == 204
        assert een_client.delete(f"/deletedFiles/{file_id}").status_code == 404
    assert een_sim.leftovers() == []


def test_files_can_be_found_by_directory_and_name(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end, name="Gate"))
    een_sim.advance_clock(21)
    first = job(een_client, job_id)["result"]["files"][0]

    found = een_client.get("/files", {"directory": "/exports", "name": first["name"]}).json()["results"]
    elsewhere = een_client.get("/files", {"directory": "/other"}).json()["results"]

    assert [item["name"] for item in found] == [first["name"]]
    assert found[0]["mimeType"] == "video/mp4" and first["url"].endswith(f"/files/{found[0]['id']}:download")
    assert elsewhere == []


def test_an_auto_delete_export_sits_in_the_read_only_downloads_folder(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end, auto_delete=True))
    een_sim.advance_clock(21)
    first = job(een_client, job_id)["result"]["files"][0]
    file_id = first["url"].rsplit("/", 1)[1].split(":")[0]

    assert "/downloads/" in first["url"] and een_client.get(first["url"]).status_code == 200
    een_client.delete(f"/jobs/{job_id}")
    assert een_client.delete(f"/files/{file_id}").status_code == 404  # not in the archive: cannot be deleted
    assert [item["Where"] for item in een_sim.leftovers()] == ["downloads", "downloads"]


def test_a_job_deleted_before_it_finishes_leaves_nothing(een_client, een_sim, recorded):
    camera_id, start, end = recorded
    job_id = create(een_client, export_body(camera_id, start, end))

    een_client.delete(f"/jobs/{job_id}")
    een_sim.advance_clock(60)

    assert een_sim.leftovers() == []
