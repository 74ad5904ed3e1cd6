"""Sealing short secrets (tokens, lock tokens) for storage: AES-256-GCM under a named data key.

A sealed value is one string, safe for a Table Storage column:

    sealed:v1:<key id>:<base64url(12-byte nonce | ciphertext | 16-byte tag)>

The key id names the data key (so keys can rotate: old values still open with the key they name), and
the GCM associated data binds the value to its purpose and its place (`context`, e.g. table/row/column):
a sealed value copied to another row, column or purpose does not open. Plain-text values (written before
sealing existed) are recognised by the missing prefix, so callers can read them once and rewrite them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.failures import ClassifiedError, Disposition

PREFIX = "sealed:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32


class SealingError(ClassifiedError):
    """A stored secret cannot be sealed or opened; the message names the cause, never the secret."""

    disposition = Disposition.MISCONFIGURED


class KeyUnavailable(SealingError):
    """The key service (Key Vault) is throttling or unreachable, after retries: try the work again later."""

    disposition = Disposition.RETRY_LATER


class KeyAccessDenied(SealingError):
    """The app may not use the key (role missing, key disabled or deleted): fix the deployment."""


class SealedValueUnreadable(SealingError):
    """A sealed value does not open: its data key is unknown, or it was altered or moved to another place."""


class KeySource(Protocol):
    """Where a `Sealer` gets its data keys (32 bytes each)."""

    def current(self) -> tuple[str, bytes]:
        """The key id and key that new values are sealed with."""
        ...

    def key(self, key_id: str) -> bytes:
        """The key named `key_id` (raises `SealedValueUnreadable` when there is none)."""
        ...


class StaticKey:
    """One fixed key: a `KeySource` for keys derived from a secret the holder already has."""

    def __init__(self, key_id: str, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self._key_id, self._key = key_id, key

    def current(self) -> tuple[str, bytes]:
        return self._key_id, self._key

    def key(self, key_id: str) -> bytes:
        if key_id != self._key_id:
            raise SealedValueUnreadable(f"sealed with key {key_id}, which is not the current one ({self._key_id})")
        return self._key


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


class Sealer:
    """Seals and opens short strings for one `purpose` (a label also bound into every value)."""

    def __init__(self, keys: KeySource, purpose: str) -> None:
        self._keys = keys
        self._purpose = purpose

    def seal(self, value: str, context: str) -> str:
        key_id, key = self._keys.current()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, value.encode("utf-8"), self._associated(key_id, context))
        return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii').rstrip('=')}"

    def open(self, stored: str, context: str) -> str:
        """The plain value of a sealed one; a value that is not sealed is returned as it is (migration:
        check `is_sealed` to know whether to rewrite it)."""
        if not is_sealed(stored):
            return stored
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise SealedValueUnreadable(f"{context}: the sealed value is malformed") from None
        if not key_id or len(raw) < NONCE_BYTES + 16:
            raise SealedValueUnreadable(f"{context}: the sealed value is malformed")
        key = self._keys.key(key_id)
        try:
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._associated(key_id, context))
        except InvalidTag:
            raise SealedValueUnreadable(
                f"{context}: the sealed value does not open with key {key_id} (altered, or moved from another place)"
            ) from None
        return plain.decode("utf-8")

    def _associated(self, key_id: str, context: str) -> bytes:
        return "\x00".join(("clearance-agent", self._purpose, key_id, context)).encode("utf-8")


def derived_key(secret: bytes, purpose: str) -> StaticKey:
    """A key derived (HKDF-SHA256) from a secret the holder has anyway; its id reveals nothing of it."""
    key = HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=f"clearance-agent {purpose} v1".encode()).derive(secret)
    return StaticKey("d-" + hashlib.sha256(b"key id\x00" + key).hexdigest()[:12], key)
