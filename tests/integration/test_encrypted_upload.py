"""Encrypted uploads to real Azure Blob storage (Azurite), checked by independent decryption.

The oracle is azure-storage-blob's own v1 decryption: if it returns our bytes, any Clearance reader of
the documented format will.
"""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobClient

from shared.crypto.envelope import ciphertext_length
from shared.upload.errors import RecipientKeyRejected, SasRejected, UploadTargetRefused, UploadTransient
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import EncryptedBlobUploader, UploadSettings
from tests.integration.conftest import SMALL_BLOCK
from tests.integration.helpers import blob_name_from_sas, complete_media_for, random_file

B = SMALL_BLOCK


@pytest.fixture
def locked_job(stack, client):
    """A media job whose files are random bytes: it opts out of the Registry's content check."""
    job = stack.sim.create_job("mediarequest", verify_content=False)
    lock = client.lock(job["Id"])
    return job["Id"], lock.lock_token


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, B - 1, B, B + 1, 3 * B + 5])
def test_uploads_decrypt_byte_for_byte_with_the_sdks_own_v1_decryption(
    stack, client, uploader, sdk_decrypt, locked_job, size
):
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, f"cam_{size}.mp4", "video/mp4")
    source, data, sha = random_file(size)
    result = uploader.upload(ticket.uri, ticket.json_web_key, source, content_type="video/mp4")
    assert (result.size, result.sha256) == (size, sha)
    assert result.blocks == max(1, -(-ciphertext_length(size) // B))
    assert sdk_decrypt(blob_name_from_sas(ticket.uri, stack.upload_container), ticket.json_web_key["kid"]) == data


@pytest.mark.parametrize(("size", "hint"), [(100, 100), (B // 3, 10), (3 * B + 7, 100), (B - 1, B // 2), (0, 16)])
def test_a_size_hint_below_the_block_size_still_decrypts_byte_for_byte_whatever_the_real_size(
    stack, client, uploader, sdk_decrypt, locked_job, size, hint
):
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, f"hinted_{size}_{hint}.jpg", "image/jpeg")
    source, data, sha = random_file(size)
    result = uploader.upload(ticket.uri, ticket.json_web_key, source, size_hint=hint)
    assert (result.size, result.sha256) == (size, sha)
    assert sdk_decrypt(blob_name_from_sas(ticket.uri, stack.upload_container), ticket.json_web_key["kid"]) == data


def test_the_registry_verifies_a_multi_block_upload(stack, client, uploader, locked_job):
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, "cam.mp4", "video/mp4")
    source, _, _ = random_file(5 * B + 123)
    result = uploader.upload(ticket.uri, ticket.json_web_key, source, size_hint=B)
    camera = stack.sim.job(job_id)["Parameters"]["Cameras"][0]
    complete_media_for(client, job_id, token, ticket.file_id, camera, result.size, result.sha256)
    files = stack.sim.job(job_id)["Files"]
    assert [f["Verification"]["Ok"] for f in files] == [True]


def test_progress_is_reported_in_order_up_to_the_full_size(stack, client, uploader, locked_job):
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, "cam.mp4", "video/mp4")
    reports: list[int] = []
    source, _, _ = random_file(10 * B)
    uploader.upload(ticket.uri, ticket.json_web_key, source, progress=reports.append)
    assert reports == sorted(reports)
    assert reports[-1] == 10 * B
    assert len(reports) > 3


def test_a_stream_without_a_size_hint_or_as_an_iterator_uploads(stack, client, uploader, sdk_decrypt, locked_job):
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, "cam.mp4", "video/mp4")
    _, data, sha = random_file(4 * B + 7)
    pieces = (data[i : i + 1000] for i in range(0, len(data), 1000))
    result = uploader.upload(ticket.uri, ticket.json_web_key, pieces)
    assert result.sha256 == sha
    assert sdk_decrypt(blob_name_from_sas(ticket.uri, stack.upload_container), ticket.json_web_key["kid"]) == data


def test_an_expired_sas_is_a_typed_error(stack, client, uploader, locked_job):
    job_id, token = locked_job
    stack.sim.inject_expired_sas()
    ticket = client.initialize_upload(job_id, token, "cam.mp4", "video/mp4")
    source, _, _ = random_file(3 * B)
    with pytest.raises(SasRejected, match="HTTP 403") as raised:
        uploader.upload(ticket.uri, ticket.json_web_key, source)
    assert "sig=REDACTED" in str(raised.value)
    sig = ticket.uri.split("sig=", 1)[1].split("&", 1)[0]
    assert sig not in str(raised.value)


def test_http_to_azurite_is_refused_unless_the_local_stack_allows_it(stack, client, locked_job):
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, "cam.mp4", "video/mp4")
    production = EncryptedBlobUploader(UploadTargetPolicy(), UploadSettings(block_size=B))
    source, _, _ = random_file(10)
    with pytest.raises(UploadTargetRefused, match="https"):
        production.upload(ticket.uri, ticket.json_web_key, source)


def test_a_ticket_key_under_2048_bits_is_refused_before_any_upload(stack, client, uploader, locked_job):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared.crypto.jwk import public_jwk

    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, "cam.mp4", "video/mp4")
    weak = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), "weak")
    source, _, _ = random_file(10)
    with pytest.raises(RecipientKeyRejected, match="at least 2048"):
        uploader.upload(ticket.uri, weak, source)


def test_a_stream_far_larger_than_hinted_grows_its_blocks_and_stays_within_the_block_limit(
    stack, client, uploader, sdk_decrypt, locked_job, monkeypatch
):
    """With the block budget shrunk to 8, a 16-block stream must grow its blocks to fit, and decrypt."""
    monkeypatch.setattr("shared.upload.uploader.MAX_BLOCKS", 8)
    job_id, token = locked_job
    ticket = client.initialize_upload(job_id, token, "long.mp4", "video/mp4")
    source, data, sha = random_file(16 * B)
    result = uploader.upload(ticket.uri, ticket.json_web_key, source, size_hint=B)
    assert result.sha256 == sha and result.blocks <= 8
    name = blob_name_from_sas(ticket.uri, stack.upload_container)
    committed, _ = BlobClient.from_connection_string(
        stack.storage_connection_string, stack.upload_container, name
    ).get_block_list("committed")
    assert len(committed) == result.blocks
    assert len({len(block.id) for block in committed}) == 1  # Azure requires equal-length block ids
    assert len({block.size for block in committed[:-1]}) > 1  # the block size did grow
    assert sdk_decrypt(name, ticket.json_web_key["kid"]) == data


def storage_steps(stack, job_id: str, file_id: str) -> list[tuple[str, int | None]]:
    """What the upload proxy forwarded for one ticket, and storage's answers."""
    record = next(f for f in stack.sim.job(job_id)["Files"] if f["FileId"] == file_id)
    return [(r["Step"], r["Status"]) for r in record["StorageRequests"]]


@pytest.mark.parametrize(("status", "code"), [(429, "TooManyRequests"), (500, "InternalError"), (503, "ServerBusy")])
def test_storage_busy_past_the_sdks_retries_is_a_transient_error_and_nothing_is_committed(
    stack, client, locked_job, status, code
):
    job_id, token = locked_job
    stack.sim.add_step_fault("PutBlock", "Status", job_id=job_id, nth=2, status=status, error_code=code, every=True)
    ticket = client.initialize_upload(job_id, token, "busy.mp4", "video/mp4")  # armed first: through the proxy
    no_retries = EncryptedBlobUploader(
        UploadTargetPolicy(allow_http_loopback=True), UploadSettings(block_size=B, concurrency=1, storage_retries=0)
    )
    source, _, _ = random_file(4 * B)

    with pytest.raises(UploadTransient, match=f"HTTP {status} {code}") as raised:
        no_retries.upload(ticket.uri, ticket.json_web_key, source)

    assert "sig=" not in str(raised.value).replace("sig=REDACTED", "")
    assert storage_steps(stack, job_id, ticket.file_id) == [("PutBlock", 201), ("PutBlock", status)]  # no commit


def test_a_busy_put_block_is_retried_by_the_sdk_and_the_upload_completes(stack, client, locked_job, sdk_decrypt):
    """The production default (3 storage retries): one 503 costs one retry (the SDK waits ~15 s), not the file."""
    job_id, token = locked_job
    stack.sim.add_step_fault("PutBlock", "Status", job_id=job_id, nth=2, status=503)
    ticket = client.initialize_upload(job_id, token, "retried.mp4", "video/mp4")
    uploader = EncryptedBlobUploader(UploadTargetPolicy(allow_http_loopback=True), UploadSettings(block_size=B))
    source, data, sha = random_file(3 * B)

    result = uploader.upload(ticket.uri, ticket.json_web_key, source)

    assert result.sha256 == sha
    steps = storage_steps(stack, job_id, ticket.file_id)
    assert steps.count(("PutBlock", 503)) == 1 and steps[-1] == ("PutBlockList", 201)
    assert sdk_decrypt(blob_name_from_sas(ticket.uri, stack.upload_container), ticket.json_web_key["kid"]) == data
