"""Azure Storage client-side encryption v1 ("FullBlob"), streaming, as Clearance requires.

One file = one AES-256-CBC stream with PKCS7 padding under a fresh random key and IV; the key is wrapped
with RSA-OAEP (SHA-1, MGF1-SHA-1) for the recipient's public key and travels in the blob's
`encryptiondata` metadata. Encryption writes into caller-owned buffers (`update_into`), which is what
lets the uploader reach the cipher's speed without allocating per chunk.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ENCRYPTION_LIBRARY = "clearance-cloud-agent 0.1 (Python cryptography)"
METADATA_NAME = "encryptiondata"
AES_BLOCK = 16
KEY_BYTES = 32

# "RSA-OAEP" in JWA, Azure Key Vault and .NET: OAEP with SHA-1 and MGF1-SHA-1, empty label.
# SHA-1 here is mandated by the format (OAEP padding, not a signature or digest of the content).
RSA_OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303
    algorithm=hashes.SHA1(),  # noqa: S303
    label=None,
)


def ciphertext_length(plaintext_length: int) -> int:
    """PKCS7 always pads: 1..16 bytes, a full block when the plaintext is block-aligned."""
    return (plaintext_length // AES_BLOCK + 1) * AES_BLOCK


class StreamEncryptor:
    """Encrypts one file. Feed plaintext with `encrypt_into`, then call `finish_into` exactly once.

    Output lags input by up to 15 bytes (CBC works on whole blocks), so `out` must have room for
    `len(data) + 15` bytes; `finish_into` writes the last 16 bytes (remainder plus padding).
    """

    def __init__(self, recipient: rsa.RSAPublicKey, key_id: str) -> None:
        self._content_key = os.urandom(KEY_BYTES)
        self._iv = os.urandom(AES_BLOCK)
        self._key_id = key_id
        self._wrapped_key = recipient.encrypt(self._content_key, RSA_OAEP)
        self._cipher = Cipher(algorithms.AES(self._content_key), modes.CBC(self._iv)).encryptor()
        self._plaintext_length = 0
        self._finished = False

    def encrypt_into(self, data: bytes | bytearray | memoryview, out: memoryview) -> int:
        """Encrypt `data`, write whole cipher blocks into `out`; returns the number of bytes written."""
        self._plaintext_length += len(data)
        return self._cipher.update_into(data, out)

    def finish_into(self, out: memoryview) -> int:
        """Pad, flush the final block into `out` (16 bytes) and forget the content key."""
        if self._finished:
            raise RuntimeError("finish_into called twice")
        pad = AES_BLOCK - self._plaintext_length % AES_BLOCK
        written = self._cipher.update_into(bytes([pad]) * pad, out)
        self._cipher.finalize()
        self._finished = True
        self._content_key = b""
        return written

    @property
    def plaintext_length(self) -> int:
        return self._plaintext_length

    def metadata_value(self) -> str:
        """The `encryptiondata` JSON exactly as Clearance (.NET, case-sensitive) expects it."""
        return json.dumps(
            {
                "WrappedContentKey": {
                    "KeyId": self._key_id,
                    "EncryptedKey": base64.b64encode(self._wrapped_key).decode("ascii"),
                    "Algorithm": "RSA-OAEP",
                },
                "EncryptionAgent": {"Protocol": "1.0", "EncryptionAlgorithm": "AES_CBC_256"},
                "ContentEncryptionIV": base64.b64encode(self._iv).decode("ascii"),
                "KeyWrappingMetadata": {"EncryptionLibrary": ENCRYPTION_LIBRARY},
                "EncryptionMode": "FullBlob",
            },
            separators=(",", ":"),
        )
