"""Verifies an uploaded file as Clearance would: Azure client-side encryption v1, streamed.

The blob is read in bounded chunks (never whole in memory) and decrypted with AES-256-CBC; the
plaintext's size and SHA-256 must match what the agent declared in its Complete* call, and then its
content must be what the call reported (`content.py`: the camera, the window, the capture time, the
device count), unless the job was created with `VerifyContent: false`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobType
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .content import ContentCheck
from .identity import KeyPair
from .store import Verification

METADATA_NAME = "encryptiondata"
MAX_METADATA_BYTES = 8 * 1024  # Azure's limit; Azurite does not enforce it
EXPECTED_NAMES: dict[str, set[str] | None] = {
    "WrappedContentKey": {"KeyId", "EncryptedKey", "Algorithm"},
    "EncryptionAgent": {"Protocol", "EncryptionAlgorithm"},
    "ContentEncryptionIV": None,
    "KeyWrappingMetadata": {"EncryptionLibrary"},
    "EncryptionMode": None,
}
DECRYPT_SLICE = 1024 * 1024
"""Plaintext is produced 1 MiB at a time from each downloaded chunk (16 MiB, storage.py): buffers that size come
from the heap again and again, while one as large as the chunk is mapped afresh by malloc each time."""
RSA_OAEP_SHA1 = asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


class VerificationFailed(Exception):
    pass


def verify_upload(
    blob: BlobClient,
    file_key: KeyPair,
    expected_size: int,
    expected_sha256: str,
    content: ContentCheck | None = None,
) -> Verification:
    """Returns the outcome; storage errors other than a missing blob propagate. `content` (None: not
    checked) is fed the plaintext as it is decrypted."""
    try:
        properties = _properties(blob)
        document = _encryption_metadata(properties.metadata)
        content_key, iv = _content_key_and_iv(document, file_key)
        if properties.blob_type != BlobType.BLOCKBLOB:
            raise VerificationFailed(f"blob is a {properties.blob_type}, expected a BlockBlob")
        if properties.size == 0 or properties.size % 16:
            raise VerificationFailed(
                f"ciphertext length {properties.size} is not a positive multiple of 16 (AES-CBC with PKCS7)"
            )
        size, sha256, problem = _decrypt_and_hash(blob, content_key, iv, content)
    except VerificationFailed as failure:
        return Verification(False, str(failure))
    if size != expected_size:
        return Verification(False, f"decrypted size {size} does not match Size {expected_size}", size, sha256)
    if sha256 != expected_sha256.lower():
        return Verification(False, "SHA-256 of the decrypted content does not match Sha256", size, sha256)
    if problem:
        assert content is not None
        return Verification(False, f"the content is not {content.subject} it was reported as: {problem}", size, sha256)
    return Verification(True, "ok", size, sha256)


def _properties(blob: BlobClient) -> Any:
    """The blob's properties. Their `metadata` is built by the SDK from the answer's `x-ms-meta-*`
    headers with each name's case as sent, so a name in the wrong case is still seen as such. (A
    `raw_response_hook` is not used for this: the SDK drops it for a retried request, and a request
    retried after a reset connection then looks like an upload without metadata.)"""
    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError:
        raise VerificationFailed("blob not found (nothing uploaded, or blocks never committed)") from None


def _encryption_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    total = sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())
    if total > MAX_METADATA_BYTES:
        raise VerificationFailed(f"blob metadata is {total} bytes, over Azure's 8 KB limit")
    if METADATA_NAME not in metadata:
        near = [name for name in metadata if name.lower() == METADATA_NAME]
        if near:
            raise VerificationFailed(f"metadata name must be exactly '{METADATA_NAME}', got '{near[0]}'")
        raise VerificationFailed(f"blob metadata '{METADATA_NAME}' is missing")
    try:
        document = json.loads(metadata[METADATA_NAME])
    except ValueError:
        raise VerificationFailed(f"metadata '{METADATA_NAME}' is not JSON") from None
    _check_names(document, EXPECTED_NAMES, "encryptiondata")
    wrapped, agent = document["WrappedContentKey"], document["EncryptionAgent"]
    expected_values = [
        ("WrappedContentKey.Algorithm", wrapped["Algorithm"], "RSA-OAEP"),
        ("EncryptionAgent.Protocol", agent["Protocol"], "1.0"),
        ("EncryptionAgent.EncryptionAlgorithm", agent["EncryptionAlgorithm"], "AES_CBC_256"),
        ("EncryptionMode", document["EncryptionMode"], "FullBlob"),
    ]
    for name, actual, expected in expected_values:
        if actual != expected:
            raise VerificationFailed(f"{name} must be {expected!r}, got {actual!r}")
    return document


def _check_names(document: Any, expected: dict[str, set[str] | None], where: str) -> None:
    if not isinstance(document, dict):
        raise VerificationFailed(f"{where} must be a JSON object")
    missing, extra = set(expected) - set(document), set(document) - set(expected)
    if missing or extra:
        raise VerificationFailed(
            f"{where} names must be exactly {sorted(expected)} (case-sensitive); "
            f"missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    for name, children in expected.items():
        if children is not None:
            _check_names(document[name], dict.fromkeys(children), f"{where}.{name}")
        elif not isinstance(document[name], str):
            raise VerificationFailed(f"{where}.{name} must be a string")


def _b64(value: Any, name: str) -> bytes:
    """Standard base64 WITH padding, as .NET and the Azure SDKs write it (base64url is refused)."""
    if not isinstance(value, str) or len(value) % 4:
        raise VerificationFailed(f"{name} is not standard padded base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationFailed(f"{name} is not standard padded base64") from None


def _content_key_and_iv(document: dict[str, Any], file_key: KeyPair) -> tuple[bytes, bytes]:
    wrapped = document["WrappedContentKey"]
    if wrapped["KeyId"] != file_key.kid:
        raise VerificationFailed(
            f"WrappedContentKey.KeyId {wrapped['KeyId']!r} is not the ticket's key {file_key.kid!r}"
        )
    encrypted_key = _b64(wrapped["EncryptedKey"], "WrappedContentKey.EncryptedKey")
    iv = _b64(document["ContentEncryptionIV"], "ContentEncryptionIV")
    try:
        content_key = file_key.key.decrypt(encrypted_key, RSA_OAEP_SHA1)
    except ValueError:
        raise VerificationFailed(
            "the content key does not unwrap with the ticket's key (RSA-OAEP, SHA-1, MGF1-SHA-1)"
        ) from None
    if len(content_key) != 32:
        raise VerificationFailed(f"the content key is {len(content_key)} bytes, expected 32 (AES-256)")
    if len(iv) != 16:
        raise VerificationFailed(f"ContentEncryptionIV is {len(iv)} bytes, expected 16")
    return content_key, iv


def _decrypt_and_hash(
    blob: BlobClient, content_key: bytes, iv: bytes, content: ContentCheck | None
) -> tuple[int, str, str]:
    """(size, SHA-256, why the content is not what was reported or "")."""
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    digest, size = hashlib.sha256(), 0

    def take(plain: bytes) -> None:
        nonlocal size
        digest.update(plain)
        size += len(plain)
        if content is not None and plain:
            content.feed(plain)

    try:
        for chunk in blob.download_blob().chunks():
            view = memoryview(chunk)
            for at in range(0, len(view), DECRYPT_SLICE):  # small pieces: their buffers are reused, not mapped
                take(unpadder.update(decryptor.update(view[at : at + DECRYPT_SLICE])))
        take(unpadder.update(decryptor.finalize()) + unpadder.finalize())
    except ValueError:
        raise VerificationFailed(
            "the content does not decrypt to valid PKCS7 padding (wrong key, IV or data)"
        ) from None
    finally:
        problem = content.problem() if content is not None else ""  # also ends a reader's helper thread
    return size, digest.hexdigest(), problem
