"""Faults at a chosen step: the Nth call of a Registry route, and the storage steps of an upload, which
go through the simulator's upload proxy only while such a fault is armed."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceResponseError
from azure.storage.blob import BlobClient, BlobServiceClient

from devstack import LocalStack
from devstack.registry_sim import SimulatorControlError

BLOCK = 64 * 1024


def new_job(stack: LocalStack, job_type: str = "mediarequest") -> str:
    """A job whose files are random bytes: it opts out of the Registry's content check."""
    return stack.sim.create_jobs(job_type, verify_content=False)[0]["Id"]


def history(stack: LocalStack, job_id: str) -> list[tuple[str, int | None]]:
    return [(entry["Operation"], entry["Status"]) for entry in stack.sim.job(job_id)["History"]]


class Background:
    """Runs a call on a thread; `result()` returns its value or raises its exception."""

    def __init__(self, call: Any) -> None:
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Any) -> None:
        try:
            self._outcome.append(("ok", call()))
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            self._outcome.append(("error", exc))

    def result(self, timeout: float = 30) -> Any:
        self._thread.join(timeout)
        assert self._outcome, "the call did not finish"
        kind, value = self._outcome[0]
        if kind == "error":
            raise value
        return value


# -- Registry routes --------------------------------------------------------------------------------------


def test_a_status_on_the_nth_call_of_a_route_with_any_retry_after(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.add_step_fault("progress", "Status", nth=2, status=503, headers={"Retry-After": "-5"})

    answers = [agent.progress(job_id, token, done, 3) for done in (1, 2, 3)]

    assert [a.status_code for a in answers] == [204, 503, 204]
    assert answers[1].headers["Retry-After"] == "-5"
    assert stack.sim.job(job_id)["Progress"] == {"TaskProgress": 3, "TaskTotal": 3}


def test_losing_the_lock_at_a_route_makes_every_call_under_it_409(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.add_step_fault("progress", "LoseLock")

    assert agent.progress(job_id, token, 1, 2).status_code == 409
    assert agent.renew(job_id, token).status_code == 409
    assert agent.lock(job_id).status_code == 409  # another agent holds it now
    assert ("lock_lost", None) in history(stack, job_id)


def test_losing_the_lock_after_a_call_was_processed(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.add_step_fault("progress", "LoseLock", after_processing=True)

    assert agent.progress(job_id, token, 1, 2).status_code == 204
    assert agent.renew(job_id, token).status_code == 409


def test_a_held_call_waits_until_released_and_other_calls_go_on_meanwhile(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    fault = stack.sim.add_step_fault("complete", "Hold")

    completing = Background(lambda: agent.complete(job_id, token, "Completed"))
    held = stack.sim.wait_for_hold(fault_id=fault["Id"])

    assert held["JobId"] == job_id and stack.sim.job(job_id)["State"] == "Locked"
    assert agent.renew(job_id, token).status_code == 200  # e.g. the lock renewer runs in between
    assert stack.sim.release_holds() == 1
    assert completing.result().status_code == 204
    assert stack.sim.job(job_id)["State"] == "Completed" and stack.sim.holds() == []


def test_a_dropped_connection_before_processing_changes_nothing(agent, stack):
    job_id = new_job(stack)
    token = agent.lock_token(job_id)
    stack.sim.add_step_fault("release", "Drop")

    with pytest.raises(requests.ConnectionError):
        agent.release(job_id, token)

    assert stack.sim.job(job_id)["State"] == "Locked"
    assert agent.release(job_id, token).status_code == 204


def test_a_dropped_connection_after_processing_loses_only_the_answer(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_step_fault("lock", "Drop", after_processing=True)

    with pytest.raises(requests.ConnectionError):
        agent.lock(job_id)

    assert stack.sim.job(job_id)["State"] == "Locked"
    assert [e["Status"] for e in stack.sim.requests() if e["Operation"] == "lock"] == [0]  # 0: no answer


@pytest.mark.parametrize(
    "spec",
    [
        {"Step": "nothing", "Action": "Drop"},
        {"Step": "lock", "Action": "Explode"},
        {"Step": "lock", "Action": "Status"},
        {"Step": "list_jobs", "Action": "LoseLock"},
        {"Step": "lock", "Action": "Drop", "FileName": "*.mp4"},
        {"Step": "PutBlock", "Action": "Hold", "HoldSeconds": 0},
    ],
)
def test_malformed_step_faults_are_refused(stack, spec):
    with pytest.raises(SimulatorControlError, match="400"):
        stack.sim._call("POST", "/step-faults", spec)


# -- storage steps, through the upload proxy ------------------------------------------------------------


class Upload:
    """One file ticket and the Azure SDK's blob client on its SAS URI (no SDK retries: each call is one try)."""

    def __init__(self, agent: Any, stack: LocalStack, job_id: str, file_name: str = "clip.mp4") -> None:
        self.job_id = job_id
        self.token = agent.lock_token(job_id)
        ticket = agent.initialize_upload(job_id, self.token, file_name).json()
        self.file_id, self.uri, self.jwk = ticket["FileId"], ticket["Uri"], ticket["JsonWebKey"]
        self.blob = BlobClient.from_blob_url(self.uri, retry_total=0)

    def stage(self, count: int, start: int = 0) -> list[str]:
        ids = [f"{n:06d}" for n in range(start, start + count)]
        for block_id in ids:
            self.blob.stage_block(block_id, os.urandom(BLOCK))
        return ids


@pytest.fixture
def azurite_blobs(stack: LocalStack) -> Iterator[Any]:
    service = BlobServiceClient.from_connection_string(stack.storage_connection_string)
    yield service.get_container_client(stack.upload_container)


def stored(azurite_blobs: Any, stack: LocalStack, job_id: str, file_id: str) -> tuple[list[int], list[int]]:
    """(committed block sizes, uncommitted block sizes) of a ticket's blob, read from Azurite directly."""
    blob_name = next(f["BlobName"] for f in stack.sim.job(job_id)["Files"] if f["FileId"] == file_id)
    committed, uncommitted = azurite_blobs.get_blob_client(blob_name).get_block_list("all")
    return [b.size for b in committed], [b.size for b in uncommitted]


def steps(stack: LocalStack, job_id: str, file_id: str) -> list[tuple[str, int, int | None]]:
    record = next(f for f in stack.sim.job(job_id)["Files"] if f["FileId"] == file_id)
    return [(r["Step"], r["N"], r["Status"]) for r in record["StorageRequests"]]


def test_only_files_with_an_armed_storage_fault_go_through_the_proxy(agent, stack):
    armed, plain = new_job(stack), new_job(stack)
    stack.sim.add_step_fault("PutBlockList", "Status", job_id=armed, file_name="cam1_*", status=500)

    proxied = Upload(agent, stack, armed, "cam1_a.mp4")
    direct_name = Upload(agent, stack, armed, "cam2_a.mp4")
    direct_job = Upload(agent, stack, plain, "cam1_a.mp4")

    blob_path = f"{urlsplit(stack.blob_endpoint).path}/{stack.upload_container}/{armed}/{proxied.file_id}/cam1_a.mp4"
    assert proxied.uri.startswith(f"{stack.registry_url}{blob_path}?") and "sig=" in proxied.uri
    assert direct_name.uri.startswith(stack.blob_endpoint) and direct_job.uri.startswith(stack.blob_endpoint)
    assert [f["Proxied"] for f in stack.sim.job(armed)["Files"]] == [True, False]


def test_the_proxy_forwards_an_encrypted_upload_unchanged_and_it_verifies(agent, stack, encrypt):
    job_id = new_job(stack)
    stack.sim.add_step_fault("PutBlob", "Status", job_id=job_id, status=500, nth=99)  # armed, never fires
    upload = Upload(agent, stack, job_id)
    plaintext = os.urandom(5 * BLOCK + 123)
    encrypted = encrypt(plaintext, upload.jwk)
    sdk = BlobClient.from_blob_url(upload.uri, max_single_put_size=BLOCK, max_block_size=BLOCK)

    sdk.upload_blob(encrypted.ciphertext, metadata=encrypted.metadata, overwrite=True)

    camera = stack.sim.job(job_id)["Parameters"]["Cameras"][0]
    body = {
        "LockToken": upload.token,
        "Size": len(plaintext),
        "Sha256": hashlib.sha256(plaintext).hexdigest(),
        **camera,
    }
    completed = agent.call("POST", f"/jobs/{job_id}/files/{upload.file_id}/media", body)
    assert completed.status_code == 204, completed.text
    assert steps(stack, job_id, upload.file_id) == [
        *[("PutBlock", n, 201) for n in range(1, 7)],
        ("PutBlockList", 1, 201),
    ]
    assert requests.get(stack.sim.job(job_id)["Files"][0]["ReadUri"], timeout=10).content == encrypted.ciphertext


def test_a_storage_status_on_the_nth_put_block_is_an_azure_error_and_stores_nothing(agent, stack, azurite_blobs):
    job_id = new_job(stack)
    stack.sim.add_step_fault("PutBlock", "Status", job_id=job_id, nth=2, status=503, headers={"Retry-After": "NaN"})
    upload = Upload(agent, stack, job_id)

    upload.stage(1)
    with pytest.raises(HttpResponseError) as refused:
        upload.stage(1, start=1)
    upload.stage(1, start=2)

    assert refused.value.status_code == 503 and refused.value.error_code == "ServerBusy"
    assert refused.value.response.headers["Retry-After"] == "NaN"
    assert stored(azurite_blobs, stack, job_id, upload.file_id) == ([], [BLOCK, BLOCK])
    assert steps(stack, job_id, upload.file_id) == [("PutBlock", 1, 201), ("PutBlock", 2, 503), ("PutBlock", 3, 201)]


def test_an_expired_sas_answer_at_put_blob(agent, stack):
    job_id = new_job(stack)
    stack.sim.add_step_fault("PutBlob", "Status", job_id=job_id, status=403)
    upload = Upload(agent, stack, job_id)

    with pytest.raises(ClientAuthenticationError) as refused:
        upload.blob.upload_blob(b"x" * 32)

    assert refused.value.status_code == 403 and refused.value.error_code == "AuthenticationFailed"


def test_a_lock_lost_after_the_last_put_block_is_lost_before_the_commit(agent, stack, azurite_blobs):
    """The harness for "the agent must not commit": the loss is in place before Put Block List can be sent."""
    job_id = new_job(stack)
    stack.sim.lose_lock_after_put_block(job_id, blocks=3)
    upload = Upload(agent, stack, job_id)

    block_ids = upload.stage(3)

    assert agent.renew(job_id, upload.token).status_code == 409  # what a careful agent checks before committing
    assert stored(azurite_blobs, stack, job_id, upload.file_id) == ([], [BLOCK] * 3)  # nothing committed
    assert all(step == "PutBlock" for step, _n, _status in steps(stack, job_id, upload.file_id))
    # storage knows nothing of locks: an agent that commits anyway succeeds there, and the Registry refuses it
    upload.blob.commit_block_list(block_ids)
    assert steps(stack, job_id, upload.file_id)[-1] == ("PutBlockList", 1, 201)
    camera = stack.sim.job(job_id)["Parameters"]["Cameras"][0]
    body = {"LockToken": upload.token, "Size": 1, "Sha256": "0" * 64, **camera}
    assert agent.call("POST", f"/jobs/{job_id}/files/{upload.file_id}/media", body).status_code == 409
    ops = [op for op, _ in history(stack, job_id)]
    assert ops.index("lock_lost") < len(ops) - 1


def test_a_held_commit_waits_until_released(agent, stack, azurite_blobs):
    job_id = new_job(stack)
    fault = stack.sim.add_step_fault("PutBlockList", "Hold", job_id=job_id)
    upload = Upload(agent, stack, job_id)
    block_ids = upload.stage(2)

    committing = Background(lambda: upload.blob.commit_block_list(block_ids))
    held = stack.sim.wait_for_hold(fault_id=fault["Id"])

    assert held["FileId"] == upload.file_id
    assert stored(azurite_blobs, stack, job_id, upload.file_id) == ([], [BLOCK, BLOCK])
    stack.sim.release_holds(held["Id"])
    committing.result()
    assert stored(azurite_blobs, stack, job_id, upload.file_id) == ([BLOCK, BLOCK], [])


def test_a_put_block_dropped_after_storage_kept_it(agent, stack, azurite_blobs):
    job_id = new_job(stack)
    stack.sim.add_step_fault("PutBlock", "Drop", job_id=job_id, after_processing=True)
    upload = Upload(agent, stack, job_id)

    with pytest.raises(ServiceResponseError):
        upload.stage(1)

    assert stored(azurite_blobs, stack, job_id, upload.file_id) == ([], [BLOCK])
    assert steps(stack, job_id, upload.file_id) == [("PutBlock", 1, None)]


def test_the_proxy_never_logs_or_records_the_sas_signature(agent, stack, caplog):
    caplog.set_level(logging.DEBUG)
    job_id = new_job(stack)
    stack.sim.add_step_fault("PutBlock", "Status", job_id=job_id, status=500)
    stack.sim.add_step_fault("PutBlock", "Drop", job_id=job_id, nth=2)
    upload = Upload(agent, stack, job_id)
    signature = re.search(r"sig=([^&]+)", upload.uri).group(1)

    for start in range(3):
        with contextlib.suppress(HttpResponseError, ServiceResponseError):
            upload.stage(1, start=start)

    views = [stack.sim.job(job_id), stack.sim.requests(), stack.sim.faults(), stack.sim.stats()]
    assert len(steps(stack, job_id, upload.file_id)) == 3
    simulator_threads = [r for r in caplog.records if r.thread != threading.get_ident()]  # not this test's client
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in simulator_threads)
    for text in (logged, str(views)):
        assert signature not in text and requests.utils.unquote(signature) not in text
