"""InitializeUpload, SAS links and the simulator's verification of encrypted uploads (docs/protocol.md §3–§4).

These tests are about the encryption, so they upload arbitrary bytes: their jobs opt out of the
content check (`VerifyContent: false`); test_sim_content_checks.py covers that check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobClient, ContainerClient, LinearRetry
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devstack import LocalStack
from devstack.registry_sim.identity import KeyPair, public_jwk
from devstack.registry_sim.storage import DOWNLOAD_CHUNK_BYTES, READ_RETRY
from devstack.registry_sim.verify import DECRYPT_SLICE, verify_upload

PLAINTEXT = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # 10,252 bytes, "an mp4"


@dataclass
class Ticket:
    job_id: str
    lock_token: str
    file_id: str
    jwk: dict[str, str]
    uri: str
    expiration: str


def open_ticket(agent, stack: LocalStack, job_type: str = "mediarequest", file_name: str = "clip.mp4") -> Ticket:
    job = stack.sim.create_jobs(job_type, verify_content=False)[0]
    token = agent.lock_token(job["Id"])
    response = agent.initialize_upload(job["Id"], token, file_name)
    assert response.status_code == 200, response.text
    body = response.json()
    return Ticket(job["Id"], token, body["FileId"], body["JsonWebKey"], body["Uri"], body["ExpirationUtc"])


def complete_media(agent, stack: LocalStack, ticket: Ticket, size: int, sha256: str, **overrides: Any) -> Any:
    camera = stack.sim.job(ticket.job_id)["Parameters"]["Cameras"][0]
    body = {"LockToken": ticket.lock_token, "Size": size, "Sha256": sha256, **camera, **overrides}
    return agent.call("POST", f"/jobs/{ticket.job_id}/files/{ticket.file_id}/media", body)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ticket(agent, stack) -> Ticket:
    return open_ticket(agent, stack)


# -- the upload ticket and its SAS -------------------------------------------------------------------


def test_upload_ticket_has_the_registry_key_and_a_blob_sas(ticket, stack):
    assert set(ticket.jwk) == {"kty", "kid", "n", "e", "alg", "use"}
    assert ticket.jwk["kty"] == "RSA" and ticket.jwk["alg"] == "RSA-OAEP"
    assert ticket.uri.startswith(f"{stack.blob_endpoint}/clearance-uploads/{ticket.job_id}/{ticket.file_id}/clip.mp4?")
    assert "sp=cw&" in ticket.uri
    assert ticket.expiration.endswith("Z")


def test_upload_sas_cannot_read_the_blob(ticket, put_blob):
    put_blob(ticket.uri, b"0123456789abcdef", None)

    assert requests.get(ticket.uri, timeout=10).status_code == 403


def test_expired_sas_fault_makes_azurite_answer_403(agent, stack):
    stack.sim.inject_expired_sas()
    expired = open_ticket(agent, stack)

    response = requests.put(expired.uri, data=b"x" * 16, headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)

    assert response.status_code == 403
    fresh = open_ticket(agent, stack)
    retried = requests.put(fresh.uri, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert retried.status_code == 201


@pytest.mark.parametrize("name", ["", "../x.mp4", "a/b.mp4", "a\\b.mp4", ".."])
def test_initialize_upload_refuses_paths_as_file_names(agent, stack, name):
    job_id = stack.sim.create_jobs("mediarequest")[0]["Id"]
    token = agent.lock_token(job_id)

    assert agent.initialize_upload(job_id, token, name).status_code == 400


def test_initialize_upload_without_the_lock_is_409(agent, stack):
    job_id = stack.sim.create_jobs("mediarequest")[0]["Id"]
    agent.lock_token(job_id)

    assert agent.initialize_upload(job_id, "stale-token").status_code == 409


# -- verification ------------------------------------------------------------------------------------------


def test_correct_upload_is_verified_and_readable_by_the_registry(agent, stack, ticket, encrypt, put_blob):
    encrypted = encrypt(PLAINTEXT, ticket.jwk)
    put_blob(ticket.uri, encrypted.ciphertext, encrypted.metadata)

    response = complete_media(agent, stack, ticket, len(PLAINTEXT), sha(PLAINTEXT).upper())

    assert response.status_code == 204, response.text
    record = stack.sim.job(ticket.job_id)["Files"][0]
    assert record["Completed"] is True and record["CompletedAs"] == "media"
    expected = {"Ok": True, "Reason": "ok", "Size": len(PLAINTEXT), "Sha256": sha(PLAINTEXT)}
    assert record["Verification"] == expected
    stored = requests.get(record["ReadUri"], timeout=10)
    assert stored.status_code == 200 and stored.content == encrypted.ciphertext
    assert decrypt_with(stack.file_private_key, stored.content, encrypted.encryption_data) == PLAINTEXT


def test_repeated_complete_media_after_success_is_204(agent, stack, ticket, encrypt, put_blob):
    encrypted = encrypt(PLAINTEXT, ticket.jwk)
    put_blob(ticket.uri, encrypted.ciphertext, encrypted.metadata)
    assert complete_media(agent, stack, ticket, len(PLAINTEXT), sha(PLAINTEXT)).status_code == 204

    assert complete_media(agent, stack, ticket, len(PLAINTEXT), sha(PLAINTEXT)).status_code == 204


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17])
def test_boundary_sizes_verify(agent, stack, ticket, encrypt, put_blob, size):
    plaintext = PLAINTEXT[:size]
    encrypted = encrypt(plaintext, ticket.jwk)
    put_blob(ticket.uri, encrypted.ciphertext, encrypted.metadata)

    assert complete_media(agent, stack, ticket, size, sha(plaintext)).status_code == 204


def test_a_file_of_several_download_chunks_verifies_and_a_changed_byte_in_the_last_one_is_caught(
    agent, stack, ticket, encrypt, put_blob
):
    """Verification reads the blob in DOWNLOAD_CHUNK_BYTES chunks and decrypts each in DECRYPT_SLICE pieces: a file
    that ends mid-chunk and mid-slice hashes the same as in one piece, and the padding is checked once, at the end."""
    size = DOWNLOAD_CHUNK_BYTES + 3 * DECRYPT_SLICE // 2 + 17
    plaintext = (bytes(range(251)) * (size // 251 + 1))[:size]
    encrypted = encrypt(plaintext, ticket.jwk)
    put_blob(ticket.uri, encrypted.ciphertext, encrypted.metadata)
    changed = bytearray(plaintext)
    changed[-1000] ^= 1

    assert complete_media(agent, stack, ticket, size, sha(bytes(changed))).status_code == 422
    assert complete_media(agent, stack, ticket, size, sha(plaintext)).status_code == 204


def test_azure_sdk_v1_encrypted_upload_is_accepted(agent, stack, ticket):
    """The independent oracle: what azure-storage-blob's own v1 encryption writes must verify."""
    public_key = rsa.RSAPublicNumbers(
        int.from_bytes(_b64url(ticket.jwk["e"]), "big"), int.from_bytes(_b64url(ticket.jwk["n"]), "big")
    ).public_key()

    class KeyWrapper:
        def wrap_key(self, key: bytes) -> bytes:
            return public_key.encrypt(key, _OAEP)

        def get_key_wrap_algorithm(self) -> str:
            return "RSA-OAEP"

        def get_kid(self) -> str:
            return ticket.jwk["kid"]

    blob = BlobClient.from_blob_url(
        ticket.uri, require_encryption=True, key_encryption_key=KeyWrapper(), encryption_version="1.0"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blob.upload_blob(PLAINTEXT, overwrite=True)

    assert complete_media(agent, stack, ticket, len(PLAINTEXT), sha(PLAINTEXT)).status_code == 204


def _broken_uploads(encrypt, jwk: dict[str, str]) -> dict[str, tuple[bytes, dict[str, str] | None]]:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    good = encrypt(PLAINTEXT, jwk)
    wrong_key = encrypt(PLAINTEXT, jwk, wrap_with=other_key)
    bad_padding = encrypt(PLAINTEXT, jwk, bad_padding=True)
    wrong_kid = json.loads(good.metadata["encryptiondata"])
    wrong_kid["WrappedContentKey"]["KeyId"] = "some-other-key"
    url_safe = json.loads(good.metadata["encryptiondata"])
    url_safe["ContentEncryptionIV"] = url_safe["ContentEncryptionIV"].rstrip("=")
    lower_case_names = {k[0].lower() + k[1:]: v for k, v in json.loads(good.metadata["encryptiondata"]).items()}
    wrong_mode = json.loads(good.metadata["encryptiondata"])
    wrong_mode["EncryptionAgent"]["EncryptionAlgorithm"] = "AES_GCM_256"
    return {
        "unwrap": (wrong_key.ciphertext, wrong_key.metadata),
        "PKCS7": (bad_padding.ciphertext, bad_padding.metadata),
        "is missing": (good.ciphertext, None),
        "exactly 'encryptiondata'": (good.ciphertext, {"EncryptionData": good.metadata["encryptiondata"]}),
        "KeyId": (good.ciphertext, {"encryptiondata": json.dumps(wrong_kid)}),
        "base64": (good.ciphertext, {"encryptiondata": json.dumps(url_safe)}),
        "case-sensitive": (good.ciphertext, {"encryptiondata": json.dumps(lower_case_names)}),
        "AES_CBC_256": (good.ciphertext, {"encryptiondata": json.dumps(wrong_mode)}),
        "multiple of 16": (good.ciphertext[:-3], good.metadata),
    }


@pytest.mark.parametrize(
    "expected_reason",
    ["unwrap", "PKCS7", "is missing", "exactly 'encryptiondata'", "KeyId", "base64",
     "case-sensitive", "AES_CBC_256", "multiple of 16"],
)  # fmt: skip
def test_broken_upload_is_refused_with_422_naming_the_reason(agent, stack, ticket, encrypt, put_blob, expected_reason):
    data, metadata = _broken_uploads(encrypt, ticket.jwk)[expected_reason]
    put_blob(ticket.uri, data, metadata)

    response = complete_media(agent, stack, ticket, len(PLAINTEXT), sha(PLAINTEXT))

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert expected_reason in response.json()["detail"]
    record = stack.sim.job(ticket.job_id)["Files"][0]
    assert record["Completed"] is False and record["Verification"]["Ok"] is False


def test_wrong_size_or_hash_is_refused(agent, stack, ticket, encrypt, put_blob):
    encrypted = encrypt(PLAINTEXT, ticket.jwk)
    put_blob(ticket.uri, encrypted.ciphertext, encrypted.metadata)

    wrong_size = complete_media(agent, stack, ticket, len(PLAINTEXT) + 1, sha(PLAINTEXT))
    wrong_hash = complete_media(agent, stack, ticket, len(PLAINTEXT), sha(b"something else"))

    assert wrong_size.status_code == 422 and "size" in wrong_size.json()["detail"]
    assert wrong_hash.status_code == 422 and "SHA-256" in wrong_hash.json()["detail"]
    # a corrected call still succeeds: the file is not completed by a failed verification
    assert complete_media(agent, stack, ticket, len(PLAINTEXT), sha(PLAINTEXT)).status_code == 204


def test_missing_blob_is_422(agent, stack, ticket):
    response = complete_media(agent, stack, ticket, 10, sha(b"0123456789"))

    assert response.status_code == 422
    assert "not found" in response.json()["detail"]


def test_complete_media_checks_fields_lock_and_file(agent, stack, ticket):
    assert complete_media(agent, stack, ticket, 1, "nothex").status_code == 400
    assert complete_media(agent, stack, ticket, 1, sha(b"x"), CameraId="not-in-job").status_code == 400
    assert complete_media(agent, stack, ticket, 1, sha(b"x"), StartTimeUtc="yesterday").status_code == 400
    assert complete_media(agent, stack, ticket, 1, sha(b"x"), LockToken="stale").status_code == 409
    unknown_file = Ticket(ticket.job_id, ticket.lock_token, "no-such-file", ticket.jwk, ticket.uri, "")
    assert complete_media(agent, stack, unknown_file, 1, sha(b"x")).status_code == 404


def test_discovery_and_thumbnail_files_complete_with_their_own_calls(agent, stack, encrypt, put_blob):
    discovery = open_ticket(agent, stack, "discovery", "devices.json")
    document = b'{"GeneratedUtc": "2024-05-01T12:00:00Z", "Vendor": "test", "Devices": []}'
    encrypted = encrypt(document, discovery.jwk)
    put_blob(discovery.uri, encrypted.ciphertext, encrypted.metadata)
    body = {
        "LockToken": discovery.lock_token,
        "DeviceCount": 0,
        "Size": len(document),
        "Sha256": sha(document),
    }
    files = f"/jobs/{discovery.job_id}/files/{discovery.file_id}"
    assert agent.call("POST", files + "/media", body).status_code == 400  # wrong call for a discovery job
    assert agent.call("POST", files + "/discovery", body).status_code == 204

    thumbnail = open_ticket(agent, stack, "thumbnail", "thumb.jpg")
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100
    encrypted = encrypt(jpeg, thumbnail.jwk)
    put_blob(thumbnail.uri, encrypted.ciphertext, encrypted.metadata)
    camera_id = stack.sim.job(thumbnail.job_id)["Parameters"]["CameraIds"][0]
    body = {
        "LockToken": thumbnail.lock_token, "CameraId": camera_id, "CapturedUtc": "2024-05-01T12:00:00Z",
        "Size": len(jpeg), "Sha256": sha(jpeg),
    }  # fmt: skip
    path = f"/jobs/{thumbnail.job_id}/files/{thumbnail.file_id}/thumbnail"
    assert agent.call("POST", path, body).status_code == 204


class FirstRequestResets(RequestsTransport):
    """A connection reset before the first request is answered (Azurite closes idle keep-alive
    connections); the SDK's retry then goes through."""

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        if self.resets == 0:
            self.resets += 1
            raise ServiceRequestError("Connection reset by peer (test)")
        return super().send(request, **kwargs)


def test_verification_whose_first_read_got_no_answer_still_finds_the_metadata(stack, encrypt):
    """The SDK drops a call's `raw_response_hook` when it retries a request that got no answer: reading
    the metadata through that hook made a good upload look like one without its metadata (a 422 seen in
    demos and drills)."""
    file_key = KeyPair.generate()
    sealed = encrypt(PLAINTEXT, public_jwk(file_key.key, file_key.kid))
    container = ContainerClient.from_connection_string(stack.storage_connection_string, f"verify-{uuid.uuid4().hex}")
    container.create_container()
    container.upload_blob("clip.mp4", sealed.ciphertext, metadata=sealed.metadata)
    transport = FirstRequestResets()
    blob = BlobClient.from_connection_string(
        stack.storage_connection_string, container.container_name, "clip.mp4", transport=transport,
        retry_policy=LinearRetry(**READ_RETRY),
    )  # fmt: skip

    outcome = verify_upload(blob, file_key, len(PLAINTEXT), sha(PLAINTEXT))

    assert transport.resets == 1
    assert outcome.ok, outcome.reason


# -- helpers -----------------------------------------------------------------------------------------------

_OAEP = asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def decrypt_with(private_key: rsa.RSAPrivateKey, ciphertext: bytes, encryption_data: dict[str, Any]) -> bytes:
    key = private_key.decrypt(base64.b64decode(encryption_data["WrappedContentKey"]["EncryptedKey"]), _OAEP)
    iv = base64.b64decode(encryption_data["ContentEncryptionIV"])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
