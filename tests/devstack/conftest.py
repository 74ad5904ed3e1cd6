"""Fixtures for the local stack tests: one real LocalStack per session, and a tiny hand-written agent.

The agent below talks to the simulator with `requests` only, the way the protocol document says
(never through the project's own client), so these tests pin the simulator to the contract.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
from azure.storage.blob import BlobClient
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devstack import LocalStack

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
OAEP_SHA1 = asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@pytest.fixture(autouse=True)
def clean_simulator(request: pytest.FixtureRequest) -> None:
    """A test that uses the stack starts with a reset Registry simulator; pure tests start no stack."""
    if "stack" not in request.fixturenames:
        return
    stack: LocalStack = request.getfixturevalue("stack")
    stack.sim.reset()
    stack.sim.configure(lock_duration_seconds=300, token_lifetime_seconds=3600, sas_ttl_seconds=3600)


@pytest.fixture(scope="session")
def connection_file(stack: LocalStack) -> dict[str, Any]:
    return json.loads(stack.connection_file_json)


class Agent:
    """A minimal agent that follows docs/protocol.md §2–§3 by hand."""

    def __init__(self, connection_file: dict[str, Any], agent_id: str) -> None:
        self.cf = connection_file
        self.agent_id = agent_id
        self.client_id = f"{connection_file['ServicePrincipalId']}@{connection_file['TenantId']}"
        self.token_url = connection_file["SecurityTokenServiceBaseAddresses"][0] + "/token"
        self.base = (
            connection_file["ApiBaseAddresses"][0] + f"/agentservice/api/v1/tenant/{connection_file['TenantId']}"
        )
        jwk = connection_file["ServicePrincipalKey"]
        self.kid = jwk["kid"]
        self.key: Any = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
        self._token: str | None = None

    def assertion(self, *, key: Any = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "jti": str(uuid.uuid4()),
            "iat": now, "nbf": now, "exp": now + 120,
        }  # fmt: skip
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key or self.key, algorithm="RS512", headers=headers or {"kid": self.kid})

    def request_token(self, assertion: str | None = None, **form: str) -> requests.Response:
        data = {
            "grant_type": JWT_BEARER,
            "client_id": self.client_id,
            "assertion": assertion or self.assertion(),
        }
        data.update(form)
        return requests.post(self.token_url, data=data, timeout=10)

    @property
    def token(self) -> str:
        if self._token is None:
            response = self.request_token()
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return requests.request(method, self.base + path, json=body, headers=headers, timeout=30)

    def jobs(self, types: str | None = None) -> requests.Response:
        suffix = f"?types={types}" if types else ""
        return self.call("GET", f"/agents/{self.agent_id}/jobs{suffix}")

    def lock(self, job_id: str) -> requests.Response:
        return self.call("POST", f"/jobs/{job_id}/lock", {"AgentId": self.agent_id})

    def lock_token(self, job_id: str) -> str:
        response = self.lock(job_id)
        assert response.status_code == 200, response.text
        return response.json()["LockToken"]

    def renew(self, job_id: str, lock_token: str) -> requests.Response:
        return self.call("POST", f"/jobs/{job_id}/lock/renew", {"LockToken": lock_token})

    def progress(self, job_id: str, lock_token: str, done: int, total: int) -> requests.Response:
        body = {"LockToken": lock_token, "TaskProgress": done, "TaskTotal": total}
        return self.call("PUT", f"/jobs/{job_id}/progress", body)

    def complete(self, job_id: str, lock_token: str, state: str, message: str | None = None) -> requests.Response:
        body = {"LockToken": lock_token, "State": state, "Message": message}
        return self.call("POST", f"/jobs/{job_id}/complete", body)

    def cancel(self, job_id: str, lock_token: str, reason: str = "camera unknown") -> requests.Response:
        return self.call("POST", f"/jobs/{job_id}/cancel", {"LockToken": lock_token, "Reason": reason})

    def release(self, job_id: str, lock_token: str) -> requests.Response:
        return self.call("POST", f"/jobs/{job_id}/release", {"LockToken": lock_token})

    def initialize_upload(
        self, job_id: str, lock_token: str, file_name: str = "clip.mp4", content_type: str = "video/mp4"
    ) -> requests.Response:
        body = {"LockToken": lock_token, "FileName": file_name, "ContentType": content_type}
        return self.call("POST", f"/jobs/{job_id}/files", body)


@pytest.fixture
def agent(connection_file: dict[str, Any]) -> Agent:
    return Agent(connection_file, "agent-a")


@pytest.fixture
def other_agent(connection_file: dict[str, Any]) -> Agent:
    return Agent(connection_file, "agent-b")


# -- client-side encryption v1, written out by hand from docs/encryption.md -------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def public_key_from_jwk(jwk: dict[str, str]) -> rsa.RSAPublicKey:
    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    return rsa.RSAPublicNumbers(number(jwk["e"]), number(jwk["n"])).public_key()


@dataclass
class EncryptedFile:
    ciphertext: bytes
    encryption_data: dict[str, Any]

    @property
    def metadata(self) -> dict[str, str]:
        return {"encryptiondata": json.dumps(self.encryption_data)}


def encrypt_v1(
    plaintext: bytes,
    jwk: dict[str, str],
    *,
    wrap_with: rsa.RSAPublicKey | None = None,
    bad_padding: bool = False,
) -> EncryptedFile:
    """AES-256-CBC + PKCS7 over the whole file, content key wrapped with RSA-OAEP (SHA-1)."""
    content_key, iv = os.urandom(32), os.urandom(16)
    if bad_padding:
        padded = plaintext + b"\x00" * (16 - len(plaintext) % 16)
    else:
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    wrapped = (wrap_with or public_key_from_jwk(jwk)).encrypt(content_key, OAEP_SHA1)
    return EncryptedFile(
        ciphertext,
        {
            "WrappedContentKey": {
                "KeyId": jwk["kid"],
                "EncryptedKey": _b64(wrapped),
                "Algorithm": "RSA-OAEP",
            },
            "EncryptionAgent": {"Protocol": "1.0", "EncryptionAlgorithm": "AES_CBC_256"},
            "ContentEncryptionIV": _b64(iv),
            "KeyWrappingMetadata": {"EncryptionLibrary": "devstack-tests"},
            "EncryptionMode": "FullBlob",
        },
    )


def upload(uri: str, data: bytes, metadata: dict[str, str] | None) -> None:
    BlobClient.from_blob_url(uri).upload_blob(data, metadata=metadata, overwrite=True)


@pytest.fixture
def encrypt() -> Callable[..., EncryptedFile]:
    """encrypt(plaintext, jwk, wrap_with=None, bad_padding=False) -> EncryptedFile."""
    return encrypt_v1


@pytest.fixture
def put_blob() -> Callable[[str, bytes, dict[str, str] | None], None]:
    """put_blob(sas_uri, data, metadata) uploads through the SAS like an agent would."""
    return upload
