"""The EEN simulator's JSON bodies validate against EEN's official OpenAPI component schemas.

The specs are not part of this repository (they carry no licence). They are read from
$EEN_OPENAPI_DIR, else <repo>/../shared/een-openapi/, else from a local mirror of
EENCloud/VMS-Developer-Portal; without any of them these tests are skipped.

Besides schema validity, every property the simulator sends must be declared by the schema (the
schemas allow extra properties, so a misspelt field would otherwise pass).

One quirk of the spec is patched in memory: `JobResultNull` has no type, so in JSON Schema it
matches any value and makes `JobSuccess.result`'s oneOf ambiguous for a files result; its
description says it "will appear as result: null", so it is read as null-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.devstack.openapi_schemas import assert_valid
from tests.devstack.vms_conftest import API, camera_with, een_time, hour_floor, sim_now

pytest_plugins = ["tests.devstack.vms_conftest"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = {"media": "media_category.yaml", "devices": "devices_category.yaml",
              "settings": "account_settings_category.yaml", "users": "user_and_accounts_category.yaml"}  # fmt: skip
MIRROR = Path("/work/.mirror/EENCloud+VMS-Developer-Portal/repo")
SPEC_FOLDER = "Open API Specifications"
NOTES_TO_SPEC = {"pending": "pending", "processing": "started", "done": "success", "failed": "failure"}


def _spec_texts() -> tuple[dict[str, str], str] | None:
    folders = [Path(os.environ["EEN_OPENAPI_DIR"])] if os.environ.get("EEN_OPENAPI_DIR") else []
    folders.append(REPO_ROOT.parent / "shared" / "een-openapi")
    for folder in folders:
        if all((folder / name).is_file() for name in SPEC_FILES.values()):
            return {key: (folder / name).read_text() for key, name in SPEC_FILES.items()}, str(folder)
    git = shutil.which("git")
    if git is None or not MIRROR.is_dir():
        return None
    texts = {}
    for key, name in SPEC_FILES.items():
        shown = subprocess.run(
            [git, f"--git-dir={MIRROR}", "show", f"HEAD:{SPEC_FOLDER}/{name}"], capture_output=True, check=False
        )
        if shown.returncode != 0:
            return None
        texts[key] = shown.stdout.decode()
    return texts, f"git mirror {MIRROR}"


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, Any]]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the EEN OpenAPI specs")
    pytest.importorskip("openapi_schema_validator", reason="openapi-schema-validator is needed")
    found = _spec_texts()
    if found is None:
        pytest.skip("EEN OpenAPI specs not available: set EEN_OPENAPI_DIR, or provide ../shared/een-openapi/")
    loaded = {key: yaml.safe_load(text) for key, text in found[0].items()}
    loaded["media"]["components"]["schemas"]["JobResultNull"] = {"nullable": True, "enum": [None]}
    return loaded


def validate(spec: dict[str, Any], component: str, instance: Any) -> None:
    assert_valid(spec, {"$ref": f"#/components/schemas/{component}"}, instance, component)


def test_camera_pages_match_api_paginated_camera_response(specs, een_client, een_sim):
    een_sim.seed_cameras(15)
    first = een_client.get("/cameras", {"include": "devicePosition,status,timeZone", "pageSize": 10}).json()
    last = een_client.get("/cameras", {"pageSize": 10, "pageToken": first["nextPageToken"]}).json()
    een_sim.configure(NextPageOnLast="null")
    null_last = een_client.get("/cameras", {"pageSize": 10, "pageToken": first["nextPageToken"]}).json()

    for page in (first, last, null_last):
        validate(specs["devices"], "ApiPaginatedCameraResponse", page)


def test_media_page_matches_api_paginated_media_response(specs, een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=10)["Id"]
    end = hour_floor(sim_now(een_sim))

    page = een_client.media(camera_id, end - timedelta(hours=2), end).json()

    assert len(page["results"]) == 3
    validate(specs["media"], "ApiPaginatedMediaResponse", page)


def test_client_settings_match_api_client_settings(specs, een_client):
    settings = een_client.get(een_client.een.api_url + API + "/clientSettings").json()

    validate(specs["settings"], "ApiClientSettings", settings)
    assert set(settings["httpsBaseUrl"]) == {"hostname", "port"}


def _export(client, camera_id, start, seconds=120):
    body = {
        "deviceId": camera_id, "type": "video",
        "period": {"startTimestamp": een_time(start), "endTimestamp": een_time(start + timedelta(seconds=seconds))},
        "info": {"name": "validation", "directory": "/exports"}, "autoDelete": True,
    }  # fmt: skip
    response = client.post("/exports", body)
    assert response.status_code == 201, response.text
    return response.json()


def test_export_and_job_in_every_state_match_the_spec(specs, een_client, een_sim):
    media = specs["media"]
    gapped = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=10)["Id"]
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=2)
    created = _export(een_client, gapped, start, seconds=3600)  # one gap: a partial success
    een_sim.fail_exports()
    failing = _export(een_client, gapped, start)
    validate(media, "ApiCreateExportResponse", created)

    seen = {}
    for advance in (0, 10, 15):
        een_sim.advance_clock(advance)
        for job_id in (created["id"], failing["id"]):
            job = een_client.get(f"/jobs/{job_id}").json()
            validate(media, "Job", job)
            seen[job["state"]] = job

    assert set(seen) == {"pending", "started", "success", "failure"}
    assert seen["success"]["detailedState"]["intervals"]["missingIntervals"]


def test_jobs_in_the_notes_vocabulary_differ_from_the_spec_only_by_state(specs, een_client, een_sim):
    een_sim.configure(JobStates="notes")
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True)["Id"]
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=2)
    job_id = _export(een_client, camera_id, start)["id"]

    states = set()
    for advance in (0, 10, 15):
        een_sim.advance_clock(advance)
        job = een_client.get(f"/jobs/{job_id}").json()
        states.add(job["state"])
        validate(specs["media"], "Job", {**job, "state": NOTES_TO_SPEC[job["state"]]})

    assert states == {"pending", "processing", "done"}


def test_error_bodies_match_api_v3_error(specs, een, een_client, een_sim):
    offline = camera_with(een_sim, Online=False)["Id"]
    bad_time = {"deviceId": offline, "type": "main", "mediaType": "video", "startTimestamp__gte": "2026-01-01T00:00Z"}

    errors = {
        400: een_client.get("/media", bad_time),
        401: requests.get(een.account_url + API + "/cameras", timeout=10),
        404: een_client.get("/jobs/00000000-0000-4000-8000-000000000000"),
        429: een_sim.inject_fault("list_cameras", 429) and een_client.get("/cameras"),
        503: een_client.get("/media/liveImage.jpeg", {"deviceId": offline, "type": "preview"}),
        405: een_client.session.put(een.account_url + API + "/cameras", headers=een_client.auth_header, timeout=10),
    }

    for status, response in errors.items():
        assert response.status_code == status
        validate(specs["media"], "ApiV3Error", response.json())
        validate(specs["devices"], "ApiV3Error", response.json())


def test_archive_file_listing_matches_api_paginated_file_response(specs, een_client, een_sim):
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=10)["Id"]
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=2)
    body = {
        "deviceId": camera_id, "type": "video", "autoDelete": False,
        "period": {"startTimestamp": een_time(start), "endTimestamp": een_time(start + timedelta(hours=1))},
        "info": {"name": "validation", "directory": "/exports"},
    }  # fmt: skip
    assert een_client.post("/exports", body).status_code == 201
    een_sim.advance_clock(25)

    listing = een_client.get("/files", {"directory": "/exports", "pageSize": 1}).json()

    assert len(listing["results"]) == 1 and listing["nextPageToken"]
    validate(specs["media"], "ApiPaginatedFileResponse", listing)


def test_job_listing_and_recycle_bin_listing_match_the_spec(specs, een_client, een_sim):
    media = specs["media"]
    camera_id = camera_with(een_sim, Online=True, HasRecordings=True, GapMinutesPerHour=10)["Id"]
    start = hour_floor(sim_now(een_sim)) - timedelta(hours=2)
    body = {
        "deviceId": camera_id, "type": "video", "autoDelete": False,
        "period": {"startTimestamp": een_time(start), "endTimestamp": een_time(start + timedelta(hours=1))},
        "info": {"name": "validation clr-x1", "directory": "/exports"},
    }  # fmt: skip
    assert een_client.post("/exports", body).status_code == 201
    assert een_client.post("/exports", body).status_code == 201
    een_sim.advance_clock(25)
    user = een_client.get("/users/self").json()
    validate(specs["users"], "ApiUserForSingle", user)
    user_id = user["id"]

    jobs = een_client.get("/jobs", {"userId": user_id, "namespace": "export", "pageSize": 1})
    files = een_client.get("/files", {"directory": "/exports", "name__contains": "clr-x1"}).json()["results"]
    assert een_client.delete(f"/files/{files[0]['id']}").status_code == 204
    trash = een_client.get("/deletedFiles", {"name__contains": "clr-x1"}).json()

    assert jobs.status_code == 200 and len(jobs.json()["results"]) == 1 and jobs.json()["nextPageToken"]
    validate(media, "PaginatedJobResponse", jobs.json())
    assert [item["id"] for item in trash["results"]] == [files[0]["id"]]
    validate(media, "ApiPaginatedFileResponseSlim", trash)
    assert een_client.get("/jobs", {"namespace": "export"}).status_code == 400  # userId is required
    assert een_client.get("/files", {"name__contains": ""}).status_code == 400
    assert een_client.get("/jobs", {"userId": user_id, "sort": "+name"}).status_code == 400
