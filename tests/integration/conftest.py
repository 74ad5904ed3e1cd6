"""Fixtures for tests that talk to the local stack over real HTTP."""

from __future__ import annotations

import warnings

import pytest
from azure.storage.blob import BlobServiceClient

from shared.crypto.envelope import RSA_OAEP
from shared.http.retry import RetryPolicy
from shared.registry.client import RegistryClient
from shared.registry.connection_file import parse_connection_file
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import EncryptedBlobUploader, UploadSettings

SMALL_BLOCK = 64 * 1024  # small blocks so that a few hundred KiB exercise the multi-block path
FAST_RETRIES = RetryPolicy(max_attempts=4, backoff_initial=0.05, backoff_max=0.2, deadline=10)


@pytest.fixture(autouse=True)
def fresh_simulator(stack):
    """Every test starts with no jobs, no faults and default settings (identity and keys are kept)."""
    stack.sim.reset()
    yield
    stack.sim.clear_faults()


@pytest.fixture
def vms(stack):
    """The EEN simulator, reset, with small files (64 kbit/s: 10 minutes ≈ 4.8 MB); faults cleared after."""
    control = stack.een.control
    control.reset()
    control.configure(BitrateKbps=64)
    yield control
    control.clear_faults()


@pytest.fixture
def connection(stack):
    return parse_connection_file(stack.connection_file_json)


@pytest.fixture
def make_client(stack, connection):
    def make(agent_id: str = "agent-a", retry: RetryPolicy = FAST_RETRIES) -> RegistryClient:
        return RegistryClient(connection, agent_id, agent_service_url=stack.agent_service_url, retry=retry)

    return make


@pytest.fixture
def client(make_client) -> RegistryClient:
    return make_client()


@pytest.fixture
def uploader() -> EncryptedBlobUploader:
    return EncryptedBlobUploader(
        UploadTargetPolicy(allow_http_loopback=True), UploadSettings(block_size=SMALL_BLOCK, concurrency=3)
    )


class RegistryKeyUnwrapper:
    """What azure-storage-blob's own v1 decryption needs: unwraps with the Registry's private key."""

    def __init__(self, private_key, kid: str) -> None:
        self._key, self._kid = private_key, kid

    def unwrap_key(self, key: bytes, algorithm: str) -> bytes:
        assert algorithm == "RSA-OAEP"
        return self._key.decrypt(key, RSA_OAEP)

    def get_kid(self) -> str:
        return self._kid


@pytest.fixture
def sdk_decrypt(stack):
    """The independent oracle: the Azure SDK's own v1 decryption of a blob we uploaded."""

    def decrypt(blob_name: str, kid: str) -> bytes:
        service = BlobServiceClient.from_connection_string(stack.storage_connection_string)
        blob = service.get_blob_client(stack.upload_container, blob_name)
        blob.key_encryption_key = RegistryKeyUnwrapper(stack.file_private_key, kid)
        blob.require_encryption = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # v1 is deprecated for *writing*; reading it is the point
            return blob.download_blob().readall()

    return decrypt
