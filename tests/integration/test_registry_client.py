"""The Registry client against the Registry simulator over real HTTP: every operation and its errors."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from azure.storage.blob import BlobClient

from devstack.vms_sim.jpeg import snapshot_jpeg
from shared.http.retry import RetryPolicy
from shared.registry.errors import (
    JobGone,
    LockConflict,
    LockTokenRefused,
    RegistryBadRequest,
    RegistryRateLimited,
    RegistryTransient,
    RegistryUnauthorized,
    UploadRejected,
)
from tests.integration.helpers import complete_media_for, footage_file, random_file

LOG_RESOLUTION = 0.002  # the request log's times are in milliseconds


def lock_new(stack, client, job_type="mediarequest", parameters=None):
    job = stack.sim.create_job(job_type, parameters)
    return job, client.lock(job["Id"])


def operations_logged(stack, operation):
    return [r for r in stack.sim.requests() if r["Operation"] == operation]


# ---- the happy path, one per job type ---------------------------------------------------------------


def test_a_media_job_is_locked_uploaded_verified_and_completed(stack, client, uploader):
    job, lock = lock_new(stack, client)
    assert [j.id for j in client.list_jobs()] == []  # locked jobs are not offered
    for camera in job["Parameters"]["Cameras"]:
        ticket = client.initialize_upload(job["Id"], lock.lock_token, f"{camera['CameraId']}.mp4", "video/mp4")
        source, _, _ = footage_file(camera)  # the Registry checks it is exactly that camera's window
        result = uploader.upload(ticket.uri, ticket.json_web_key, source, content_type="video/mp4")
        complete_media_for(client, job["Id"], lock.lock_token, ticket.file_id, camera, result.size, result.sha256)
    client.report_progress(job["Id"], lock.lock_token, 3, 3)
    client.complete(job["Id"], lock.lock_token, "Completed")
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Completed"
    assert len(seen["Files"]) == len(job["Parameters"]["Cameras"])
    assert all(f["Verification"]["Ok"] for f in seen["Files"])


def test_a_discovery_job_completes_with_its_document(stack, client, uploader):
    job, lock = lock_new(stack, client, "discovery")
    document = json.dumps({"GeneratedUtc": "2026-11-24T05:00:00Z", "Vendor": "test", "Devices": []}).encode()
    ticket = client.initialize_upload(job["Id"], lock.lock_token, "discovery.json", "application/json")
    result = uploader.upload(ticket.uri, ticket.json_web_key, io.BytesIO(document), content_type="application/json")
    client.complete_discovery(
        job["Id"], lock.lock_token, ticket.file_id, device_count=0, size=result.size, sha256=result.sha256
    )
    client.complete(job["Id"], lock.lock_token, "Completed")
    assert stack.sim.job(job["Id"])["State"] == "Completed"


def test_a_thumbnail_job_completes(stack, client, uploader):
    job, lock = lock_new(stack, client, "thumbnail")
    camera_id = job["Parameters"]["CameraIds"][0]
    captured = datetime(2026, 11, 24, 5, tzinfo=UTC)
    jpeg = snapshot_jpeg(camera_id, int(captured.timestamp() * 1000))
    ticket = client.initialize_upload(job["Id"], lock.lock_token, f"{camera_id}.jpg", "image/jpeg")
    result = uploader.upload(ticket.uri, ticket.json_web_key, io.BytesIO(jpeg), content_type="image/jpeg")
    client.complete_thumbnail(
        job["Id"],
        lock.lock_token,
        ticket.file_id,
        camera_id=camera_id,
        captured=captured,
        size=result.size,
        sha256=result.sha256,
    )
    client.complete(job["Id"], lock.lock_token, "PartiallyCompleted", "2 of 3 cameras had no image")
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "PartiallyCompleted"


# ---- jobs and locks --------------------------------------------------------------------------------


def test_list_jobs_offers_available_jobs_oldest_first_and_filters_by_type(stack, client):
    created = [stack.sim.create_job(t)["Id"] for t in ("discovery", "thumbnail", "mediarequest")]
    assert [j.id for j in client.list_jobs()] == created
    jobs = client.list_jobs(types=["thumbnail", "discovery"])
    assert {j.type for j in jobs} == {"thumbnail", "discovery"}
    assert jobs[0].created_utc is not None and jobs[0].created_utc.tzinfo is not None


def test_second_agent_gets_a_conflict_while_the_first_holds_the_lock(stack, make_client):
    job = stack.sim.create_job("thumbnail")
    first, second = make_client("agent-a"), make_client("agent-b")
    results: list[object] = []

    def try_lock(c):
        try:
            results.append(c.lock(job["Id"]))
        except LockConflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=try_lock, args=(c,)) for c in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(r).__name__ for r in results) == ["Lock", "LockConflict"]


def test_a_lost_response_to_lock_is_retried_and_gets_the_same_lock(stack, client):
    job = stack.sim.create_job("discovery")
    stack.sim.inject_fault("lock", 503, after_processing=True)
    lock = client.lock(job["Id"])
    assert stack.sim.job(job["Id"])["Lock"]["LockToken"] == lock.lock_token


def test_renew_extends_the_lock(stack, client):
    job, lock = lock_new(stack, client)
    stack.sim.advance_clock(60)
    renewed = client.renew(job["Id"], lock.lock_token)
    assert renewed.lock_expiration_utc > lock.lock_expiration_utc


def test_a_lock_that_expired_is_lost_and_the_job_is_offered_again(stack, client, make_client):
    job, lock = lock_new(stack, client)
    stack.sim.advance_clock(301)
    with pytest.raises(LockTokenRefused):
        client.renew(job["Id"], lock.lock_token)
    with pytest.raises(LockTokenRefused):
        client.report_progress(job["Id"], lock.lock_token, 1, 2)
    with pytest.raises(LockTokenRefused):
        client.complete(job["Id"], lock.lock_token, "Completed")
    assert job["Id"] in [j.id for j in make_client("agent-b").list_jobs()]


def test_a_lock_expired_by_the_registry_makes_file_calls_fail_with_lock_lost(stack, client):
    job, lock = lock_new(stack, client)
    stack.sim.expire_lock(job["Id"])
    with pytest.raises(LockTokenRefused):
        client.initialize_upload(job["Id"], lock.lock_token, "a.mp4", "video/mp4")


def test_cancel_makes_the_job_unavailable_for_good(stack, client):
    job, lock = lock_new(stack, client)
    client.cancel(job["Id"], lock.lock_token, "camera cam-9 is unknown to the VMS")
    seen = stack.sim.job(job["Id"])
    assert seen["State"] == "Canceled"
    assert [j.id for j in client.list_jobs()] == []
    with pytest.raises(JobGone):
        client.lock(job["Id"])


def test_release_makes_the_job_available_again(stack, client):
    job, lock = lock_new(stack, client)
    client.release(job["Id"], lock.lock_token)
    assert [j.id for j in client.list_jobs()] == [job["Id"]]


def test_completing_twice_with_the_same_lock_token_is_idempotent(stack, client):
    job, lock = lock_new(stack, client, "discovery")
    client.complete(job["Id"], lock.lock_token, "Failed", "VMS unreachable")
    client.complete(job["Id"], lock.lock_token, "Failed", "VMS unreachable")
    assert stack.sim.job(job["Id"])["State"] == "Failed"


def test_progress_beyond_the_total_is_a_bad_request(stack, client):
    job, lock = lock_new(stack, client)
    with pytest.raises(RegistryBadRequest, match="HTTP 400"):
        client.report_progress(job["Id"], lock.lock_token, 5, 4)


def test_an_unknown_job_is_gone(client):
    with pytest.raises(JobGone):
        client.lock("00000000-0000-0000-0000-000000000000")


# ---- resilience --------------------------------------------------------------------------------------


def answered_at(stack, operation):
    """(status, when the simulator answered) of each call of `operation`, from its request log."""
    return [
        (r["Status"], datetime.fromisoformat(r["TimeUtc"]).timestamp()) for r in operations_logged(stack, operation)
    ]


def test_429_with_retry_after_is_honoured(stack, make_client):
    client = make_client(retry=RetryPolicy(max_attempts=4, deadline=20))
    stack.sim.inject_fault("list_jobs", 429, retry_after=1, count=1)

    assert client.list_jobs() == []

    (limited, at), (status, retried_at) = answered_at(stack, "list_jobs")
    assert (limited, status) == (429, 200)
    assert retried_at - at >= 1.0 - LOG_RESOLUTION  # the Registry saw the retry no sooner than it asked


def test_429_past_the_deadline_is_a_typed_rate_limit_error(stack, make_client):
    client = make_client(retry=RetryPolicy(max_attempts=5, deadline=2))
    stack.sim.inject_fault("list_jobs", 429, retry_after=5, count=5)
    with pytest.raises(RegistryRateLimited) as raised:
        client.list_jobs()
    assert raised.value.retry_after == pytest.approx(5, abs=1)


def test_503s_are_retried_until_the_registry_is_back(stack, client):
    job = stack.sim.create_job("discovery")
    stack.sim.inject_fault("lock", 503, count=2)

    lock = client.lock(job["Id"])

    assert [status for status, _ in answered_at(stack, "lock")] == [503, 503, 200]  # both 503s were served
    assert stack.sim.job(job["Id"])["Lock"]["LockToken"] == lock.lock_token


def test_a_registry_that_stays_down_is_a_transient_error(stack, client):
    job = stack.sim.create_job("discovery")
    stack.sim.inject_fault("lock", 502, count=10)
    with pytest.raises(RegistryTransient):
        client.lock(job["Id"])


def test_an_unreachable_registry_is_a_transient_error_without_secrets(connection):
    from shared.registry.client import RegistryClient

    client = RegistryClient(
        connection,
        "agent-a",
        agent_service_url="http://127.0.0.1:9/agentservice",
        retry=RetryPolicy(max_attempts=2, backoff_initial=0.01, deadline=2),
    )
    with pytest.raises(RegistryTransient, match=r"unreachable|connection failed"):
        client.list_jobs()


def test_a_token_that_expires_mid_run_is_renewed_once(stack, client):
    stack.sim.configure(token_lifetime_seconds=120)
    client.list_jobs()
    stack.sim.advance_clock(121)  # the Registry now rejects the cached token
    client.list_jobs()
    statuses = [r["Status"] for r in stack.sim.requests() if r["Operation"] in ("token", "list_jobs")]
    assert statuses == [200, 200, 401, 200, 200]


def test_one_token_is_shared_by_threads_using_one_client(stack, client):
    jobs = [stack.sim.create_job("thumbnail")["Id"] for _ in range(8)]
    threads = [threading.Thread(target=client.lock, args=(job_id,)) for job_id in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(operations_logged(stack, "token")) == 1
    assert all(stack.sim.job(j)["State"] == "Locked" for j in jobs)


def test_a_connection_file_with_the_wrong_key_is_unauthorized(stack, connection):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared.crypto.jwk import private_jwk
    from shared.registry.client import RegistryClient
    from shared.registry.connection_file import parse_connection_file

    document = json.loads(stack.connection_file_json)
    document["ServicePrincipalKey"] = private_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), document["ServicePrincipalKey"]["kid"]
    )
    impostor = RegistryClient(
        parse_connection_file(json.dumps(document)), "agent-x", agent_service_url=stack.agent_service_url
    )
    with pytest.raises(RegistryUnauthorized, match="refused the agent's credentials"):
        impostor.list_jobs()


# ---- the Registry verifies what we upload --------------------------------------------------------------


@pytest.fixture
def media_file(stack, client):
    job, lock = lock_new(stack, client)
    camera = job["Parameters"]["Cameras"][0]
    ticket = client.initialize_upload(job["Id"], lock.lock_token, "cam.mp4", "video/mp4")

    def complete(size: int, sha256: str) -> None:
        complete_media_for(client, job["Id"], lock.lock_token, ticket.file_id, camera, size, sha256)

    return ticket, complete


def test_a_file_with_a_wrong_sha256_is_rejected(uploader, media_file):
    ticket, complete = media_file
    source, _, _ = random_file(1000)
    result = uploader.upload(ticket.uri, ticket.json_web_key, source)
    with pytest.raises(UploadRejected, match="HTTP 422"):
        complete(result.size, "0" * 64)


def test_a_file_encrypted_for_another_key_is_rejected(uploader, media_file):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared.crypto.jwk import public_jwk

    ticket, complete = media_file
    other = public_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), ticket.json_web_key["kid"]
    )
    source, _, _ = random_file(1000)
    result = uploader.upload(ticket.uri, other, source)
    with pytest.raises(UploadRejected):
        complete(result.size, result.sha256)


def test_a_plaintext_upload_without_metadata_is_rejected(media_file):
    ticket, complete = media_file
    _source, data, sha = random_file(4096)
    BlobClient.from_blob_url(ticket.uri).upload_blob(data, overwrite=True)
    with pytest.raises(UploadRejected, match="encryptiondata"):
        complete(len(data), sha)


def test_a_tampered_ciphertext_with_bad_padding_is_rejected(stack, uploader, media_file):
    ticket, complete = media_file
    source, _, _ = random_file(4096)
    result = uploader.upload(ticket.uri, ticket.json_web_key, source)
    blob = BlobClient.from_blob_url(ticket.uri)
    service_blob = BlobClient.from_connection_string(
        stack.storage_connection_string, stack.upload_container, blob.blob_name
    )
    props = service_blob.get_blob_properties()
    ciphertext = bytearray(service_blob.download_blob().readall())
    ciphertext[-1] ^= 0xFF  # corrupts the last block, hence the padding
    blob.upload_blob(bytes(ciphertext), overwrite=True, metadata=props.metadata)
    with pytest.raises(UploadRejected):
        complete(result.size, result.sha256)


# ---- nothing secret in the logs --------------------------------------------------------------------------


def test_no_token_assertion_or_sas_signature_reaches_the_logs(stack, client, uploader, caplog):
    with caplog.at_level(logging.DEBUG):
        job, lock = lock_new(stack, client, "discovery")
        ticket = client.initialize_upload(job["Id"], lock.lock_token, "d.json", "application/json")
        stack.sim.inject_fault("complete_discovery", 503, count=1)
        document = b'{"GeneratedUtc": "2026-11-24T05:00:00Z", "Vendor": "test", "Devices": []}'
        result = uploader.upload(ticket.uri, ticket.json_web_key, io.BytesIO(document))
        client.complete_discovery(
            job["Id"], lock.lock_token, ticket.file_id, device_count=0, size=result.size, sha256=result.sha256
        )
        client.complete(job["Id"], lock.lock_token, "Completed")
    token = client._tokens.token()
    sig = ticket.uri.split("sig=", 1)[1].split("&", 1)[0]
    key = json.loads(stack.connection_file_json)["ServicePrincipalKey"]["d"]
    text = caplog.text
    assert caplog.records, "the flow should have logged something"
    for secret in (token, sig, key[:20], lock.lock_token):
        assert secret not in text


@pytest.fixture
def short_tokens(stack):
    stack.sim.configure(token_lifetime_seconds=2)
    yield 2
    stack.sim.configure(token_lifetime_seconds=3600)  # a reset keeps the configuration


def test_the_token_is_renewed_after_half_its_lifetime_before_the_registry_rejects_it(stack, client, short_tokens):
    def tokens_fetched() -> int:
        return len(operations_logged(stack, "token"))

    deadline = time.monotonic() + 20
    while tokens_fetched() < 2:  # calls keep going until the client renews its token of its own accord
        assert time.monotonic() < deadline, "the token was never renewed"
        client.list_jobs()
        time.sleep(0.02)  # a call every 20 ms or so: one of them falls after half the token's lifetime

    (_, first), (_, second) = answered_at(stack, "token")
    calls = [status for status, _ in answered_at(stack, "list_jobs")]
    assert set(calls) == {200}  # never a 401: the token was renewed before the Registry would refuse it
    assert len(calls) > 2  # the first token served many calls: it is not fetched per call
    assert second - first >= short_tokens / 2 - LOG_RESOLUTION  # kept for half its lifetime, then renewed
