"""The resilience drill's figures: files issued/completed/rejected, duplicate evidence, bytes storage received.

The files are random bytes: the jobs opt out of the Registry's content check (`verify_content=False`).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from azure.storage.blob import BlobClient

from devstack import LocalStack


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Files:
    """Tickets, uploads and Complete* calls of one locked job, by hand (protocol §3–§4)."""

    def __init__(self, agent: Any, stack: LocalStack, job_id: str, encrypt: Any) -> None:
        self.agent, self.stack, self.job_id, self.encrypt = agent, stack, job_id, encrypt
        self.token = agent.lock_token(job_id)
        self.job = stack.sim.job(job_id)

    def ticket(self, name: str = "clip.mp4") -> dict[str, Any]:
        response = self.agent.initialize_upload(self.job_id, self.token, name)
        assert response.status_code == 200, response.text
        return response.json()

    def upload(self, ticket: dict[str, Any], plaintext: bytes) -> int:
        encrypted = self.encrypt(plaintext, ticket["JsonWebKey"])
        BlobClient.from_blob_url(ticket["Uri"]).upload_blob(encrypted.ciphertext, metadata=encrypted.metadata)
        return len(encrypted.ciphertext)

    def complete(self, ticket: dict[str, Any], plaintext: bytes, **fields: Any) -> int:
        kind = {"mediarequest": "media", "thumbnail": "thumbnail"}[self.job["Type"]]
        body = {"LockToken": self.token, "Size": len(plaintext), "Sha256": sha(plaintext), **fields}
        return self.agent.call("POST", f"/jobs/{self.job_id}/files/{ticket['FileId']}/{kind}", body).status_code


def test_files_issued_completed_rejected_and_every_byte_received_including_abandoned_uploads(agent, stack, encrypt):
    job_id = stack.sim.create_jobs("mediarequest", verify_content=False)[0]["Id"]
    files = Files(agent, stack, job_id, encrypt)
    window = files.job["Parameters"]["Cameras"][0]
    good, bad, abandoned, _never_used = files.ticket(), files.ticket(), files.ticket(), files.ticket()
    data = os.urandom(1000)
    sent = files.upload(good, data) + files.upload(bad, data)
    blocks = BlobClient.from_blob_url(abandoned["Uri"])
    blocks.stage_block("000000", b"a" * 4096)
    blocks.stage_block("000001", b"b" * 1024)

    assert files.complete(good, data, **window) == 204
    assert files.complete(bad, data + b"!", **window) == 422

    figures = stack.sim.job_stats(job_id)
    assert figures["FilesIssued"] == 4 and figures["FilesCompleted"] == 1 and figures["FilesRejected"] == 1
    assert figures["BytesReceived"] == sent + 4096 + 1024
    assert figures["DuplicateCompletions"] == 0


def test_a_second_file_for_the_same_evidence_under_one_lock_is_a_duplicate(agent, stack, encrypt):
    job_id = stack.sim.create_jobs("mediarequest", verify_content=False)[0]["Id"]
    files = Files(agent, stack, job_id, encrypt)
    window = files.job["Parameters"]["Cameras"][0]
    same_instants = {**window, "StartTimeUtc": window["StartTimeUtc"].replace("Z", "+00:00")}
    data = os.urandom(100)
    first, second, third = files.ticket(), files.ticket(), files.ticket()
    for ticket in (first, second, third):
        files.upload(ticket, data)

    assert files.complete(first, data, **window) == 204
    assert files.complete(first, data, **window) == 204  # a retry of the same file: not a duplicate
    assert files.complete(second, data, **same_instants) == 204  # the same evidence again
    assert files.complete(third, data, **{**window, "EndTimeUtc": window["StartTimeUtc"]}) == 204  # other times

    figures = stack.sim.job_stats(job_id)
    assert figures["DuplicateCompletions"] == 1
    assert figures["Duplicates"] == [{"FileId": second["FileId"], "DuplicateOf": first["FileId"]}]


def test_the_same_evidence_under_a_new_lock_is_not_counted_but_thumbnails_are_checked_too(agent, stack, encrypt):
    media_id = stack.sim.create_jobs("mediarequest", verify_content=False)[0]["Id"]
    thumbs_id = stack.sim.create_jobs("thumbnail", verify_content=False)[0]["Id"]
    data = os.urandom(64)
    media = Files(agent, stack, media_id, encrypt)
    window = media.job["Parameters"]["Cameras"][0]
    ticket = media.ticket()
    media.upload(ticket, data)
    assert media.complete(ticket, data, **window) == 204
    assert agent.release(media_id, media.token).status_code == 204
    relocked = Files(agent, stack, media_id, encrypt)  # a new lock token
    again = relocked.ticket()
    relocked.upload(again, data)
    assert relocked.complete(again, data, **window) == 204
    thumbs = Files(agent, stack, thumbs_id, encrypt)
    camera = thumbs.job["Parameters"]["CameraIds"][0]
    shots = [thumbs.ticket(f"{n}.jpg") for n in range(2)]
    for shot in shots:
        thumbs.upload(shot, data)
        assert thumbs.complete(shot, data, CameraId=camera, CapturedUtc="2024-05-01T12:00:00Z") == 204

    figures = stack.sim.stats()

    per_job = {job["JobId"]: job for job in figures["PerJob"]}
    assert per_job[media_id]["DuplicateCompletions"] == 0
    assert per_job[thumbs_id]["DuplicateCompletions"] == 1
    assert figures["Jobs"] == 2 and figures["DuplicateCompletions"] == 1
    for name in ("FilesIssued", "FilesCompleted", "FilesRejected", "BytesReceived"):
        assert figures[name] == per_job[media_id][name] + per_job[thumbs_id][name]
    assert figures["FilesIssued"] == figures["FilesCompleted"] == 4
