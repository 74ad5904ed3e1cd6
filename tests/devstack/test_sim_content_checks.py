"""The Registry simulator checks what a file holds, not only that it decrypts: every Complete* call's file
must be exactly what the call reports (camera, window or capture time, device count), or 422."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from devstack import LocalStack
from devstack.footage import footage, jpeg_comment
from devstack.registry_sim.content import MediaCheck
from devstack.vms_sim.jpeg import snapshot_jpeg

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW = {"CameraId": "cam-a", "StartTimeUtc": "2026-01-01T00:00:00Z", "EndTimeUtc": "2026-01-01T00:00:10Z"}


def complete(agent, stack: LocalStack, job_type: str, parameters: Any, content: bytes, kind: str, fields: dict,
             encrypt, put_blob, *, verify_content: bool = True):  # fmt: skip
    job_id = stack.sim.create_job(job_type, parameters, verify_content=verify_content)["Id"]
    token = agent.lock_token(job_id)
    ticket = agent.initialize_upload(job_id, token, "file.bin").json()
    encrypted = encrypt(content, ticket["JsonWebKey"])
    put_blob(ticket["Uri"], encrypted.ciphertext, encrypted.metadata)
    body = {"LockToken": token, "Size": len(content), "Sha256": hashlib.sha256(content).hexdigest(), **fields}
    response = agent.call("POST", f"/jobs/{job_id}/files/{ticket['FileId']}/{kind}", body)
    return response, stack.sim.job(job_id)["Files"][0]["Verification"]


def media(camera: str, start: int, end: int, *, filler: bool = False) -> bytes:
    return b"".join(footage(camera, start, end, 800, filler=filler))


@pytest.fixture
def send_media(agent, stack, encrypt, put_blob):
    """Completes a one-camera media job (cameras a and b, 00:00:00–00:00:10) with `content` reported as `fields`."""

    def send(content: bytes, verify_content: bool = True, **fields: str):
        windows = [WINDOW, {**WINDOW, "CameraId": "cam-b"}]
        parameters = {"RequestId": "r", "Cameras": windows}
        return complete(agent, stack, "mediarequest", parameters, content, "media", {**WINDOW, **fields},
                        encrypt, put_blob, verify_content=verify_content)  # fmt: skip

    return send


def test_the_exact_footage_of_the_reported_camera_and_window_is_accepted(send_media):
    response, verification = send_media(media("cam-a", T0, T0 + 10_000))

    assert response.status_code == 204, response.text
    assert verification["Ok"] is True


def test_a_part_of_the_window_reported_by_its_own_times_to_the_millisecond(send_media):
    content = media("cam-a", T0 + 2_250, T0 + 7_001)

    response, _ = send_media(content, StartTimeUtc="2026-01-01T00:00:02.250Z", EndTimeUtc="2026-01-01T00:00:07.001Z")

    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    ("content", "fields", "reason"),
    [
        (media("cam-b", T0, T0 + 10_000), {}, "not camera cam-a's"),
        (media("cam-a", T0, T0 + 10_000), {"CameraId": "cam-b"}, "not camera cam-b's"),
        (media("cam-a", T0, T0 + 12_000), {}, "covers"),  # footage beyond the window
        (media("cam-a", T0 + 1_000, T0 + 10_000), {}, "covers"),  # less than reported
        (media("cam-a", T0, T0 + 5_000) + media("cam-a", T0 + 6_000, T0 + 10_000), {}, "not where the previous"),
        (media("cam-a", T0, T0 + 5_000) + media("cam-a", T0 + 5_000, T0 + 10_000, filler=True), {}, "placeholders"),
        (media("cam-a", T0, T0 + 10_000)[:-1], {}, "truncated"),
        (b"\x00\x00\x00\x18ftypisom" + bytes(1000), {}, "not in a media format"),
        (media("cam-a", T0, T0 + 10_000), {"EndTimeUtc": "2026-01-01T00:00:10.0005Z"}, "finer than a millisecond"),
    ],
    ids=["other-camera", "reported-other", "beyond-window", "short", "gap", "filler", "truncated", "unknown", "us"],
)
def test_media_that_is_not_what_was_reported_is_rejected_with_the_reason(send_media, content, fields, reason):
    response, verification = send_media(content, **fields)

    assert response.status_code == 422
    assert reason in response.json()["detail"] and "not the footage it was reported as" in response.json()["detail"]
    assert verification["Ok"] is False


def test_a_job_created_without_content_checks_accepts_any_bytes(send_media):
    response, _ = send_media(b"arbitrary bytes", verify_content=False)

    assert response.status_code == 204, response.text


@pytest.fixture
def send_thumbnail(agent, stack, encrypt, put_blob):
    def send(image: bytes, camera_id: str = "cam-a", captured: str = "2026-01-01T00:00:05.300Z"):
        fields = {"CameraId": camera_id, "CapturedUtc": captured}
        parameters = {"CameraIds": ["cam-a", "cam-b"]}
        return complete(agent, stack, "thumbnail", parameters, image, "thumbnail", fields, encrypt, put_blob)

    return send


def test_a_thumbnail_of_the_reported_camera_and_time_is_accepted(send_thumbnail):
    response, _ = send_thumbnail(snapshot_jpeg("cam-a", T0 + 5_300, 200 * 1024))

    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    ("image", "camera_id", "captured", "reason"),
    [
        (snapshot_jpeg("cam-b", T0 + 5_300), "cam-a", "2026-01-01T00:00:05.300Z", "not camera cam-a's"),
        (snapshot_jpeg("cam-a", T0 + 5_300), "cam-a", "2026-01-01T00:00:05Z", "captured at"),
        (b"\xff\xd8\xff\xfe" + jpeg_comment("cam-a", T0 + 5_300) + b"no end", "cam-a", "2026-01-01T00:00:05.300Z",
         "not a JPEG"),
        (b"\xff\xd8\xff\xe0" + bytes(100) + b"\xff\xd9", "cam-a", "2026-01-01T00:00:05.300Z", "no simulator comment"),
    ],
    ids=["other-camera", "other-time", "not-jpeg", "no-comment"],
)  # fmt: skip
def test_a_thumbnail_that_is_not_what_was_reported_is_rejected(send_thumbnail, image, camera_id, captured, reason):
    response, _ = send_thumbnail(image, camera_id, captured)

    assert response.status_code == 422 and reason in response.json()["detail"]


@pytest.mark.parametrize(("devices", "reported", "status"), [(3, 3, 204), (3, 2, 422), (0, 0, 204)])
def test_discovery_device_count_must_match_the_document(agent, stack, encrypt, put_blob, devices, reported, status):
    document = json.dumps({"GeneratedUtc": "2026-01-01T00:00:00Z", "Vendor": "test",
                           "Devices": [{"DeviceId": str(n)} for n in range(devices)]}).encode()  # fmt: skip

    response, _ = complete(agent, stack, "discovery", {}, document, "discovery", {"DeviceCount": reported},
                           encrypt, put_blob)  # fmt: skip

    assert response.status_code == status, response.text
    if status == 422:
        assert "lists 3 devices, but DeviceCount is 2" in response.json()["detail"]


def test_the_media_check_streams_in_pieces_of_any_size():
    content = media("cam-a", T0 + 1, T0 + 4_999)
    check = MediaCheck("cam-a", T0 + 1, T0 + 4_999)
    for offset in range(0, len(content), 7):
        check.feed(content[offset : offset + 7])

    assert check.problem() == ""
