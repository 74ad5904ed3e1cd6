"""Data keys for sealing credentials, kept wrapped in the app-only credentials table.

Envelope encryption: each credential is sealed (AES-256-GCM, sealing.py) under a random 32-byte data
key; the data key is stored only *wrapped* by a key-encryption key that never leaves Key Vault (RSA-OAEP-256,
`KeyVaultKeyWrapper`) — or, on the local stack only, by a key file (`LocalKeyFileWrapper`). The rows, in
the credentials table's `keyring` partition:

    current          DataKeyId: the data key new values are sealed with
    dk-<id>          WrappedKey, WrapKeyId (the Key Vault key *version* that wrapped it), WrapAlgorithm, CreatedUtc

Two instances starting at once both make a data key, but only one `current` row is created (create if
absent); the other adopts it. A data key older than `max_age` is replaced the same way (compare-and-swap
of `current`); old data keys stay, so values sealed with them still open, and every credential moves to
the new key the next time it is written (EEN's grant rotates hourly, Verkada's tokens every 30 minutes).
Unwrapped keys are cached in memory for `cache_ttl`, so a token refresh costs no Key Vault call in the
common case. Key Vault throttling or an outage is retried with backoff, then `KeyUnavailable` (retry the
work later: the job is released, never canceled); a refused identity or a missing key is `KeyAccessDenied`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, UpdateMode
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from shared.secrets.sealing import KEY_BYTES, KeyAccessDenied, KeyUnavailable, SealedValueUnreadable, Sealer

log = logging.getLogger(__name__)

PARTITION = "keyring"
CURRENT = "current"
T = TypeVar("T")


@dataclass(frozen=True)
class WrappedKey:
    wrap_key_id: str
    """Which key-encryption key (and version) wrapped it: the one that must unwrap it."""
    algorithm: str
    data: bytes


class KeyWrapper(Protocol):
    def wrap(self, key: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey) -> bytes: ...


# ---- the key-encryption keys --------------------------------------------------------------------------


class KeyVaultKeyWrapper:
    """A Key Vault RSA key (wrapKey/unwrapKey, RSA-OAEP-256) used with the app's managed identity; the
    app's role on the key allows wrap, unwrap and reading the key's public part, nothing else."""

    ALGORITHM = "RSA-OAEP-256"

    def __init__(self, key_uri: str, credential: TokenCredential, **client_options: Any) -> None:
        """`client_options` go to each `CryptographyClient` (tests: a stand-in vault's TLS and challenge)."""
        self._key_uri = key_uri.rstrip("/")
        self._credential = credential
        self._options = {"retry_total": 1, "connection_timeout": 10, "read_timeout": 20, **client_options}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, key_id: str) -> Any:
        from azure.keyvault.keys.crypto import CryptographyClient

        with self._lock:
            if key_id not in self._clients:
                # The SDK's own retries are few and short: ours (DataKeyRing) back off and bound the total.
                self._clients[key_id] = CryptographyClient(key_id, self._credential, **self._options)
            return self._clients[key_id]

    def wrap(self, key: bytes) -> WrappedKey:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        result = _key_vault_call(lambda: self._client(self._key_uri).wrap_key(KeyWrapAlgorithm.rsa_oaep_256, key))
        return WrappedKey(result.key_id or self._key_uri, self.ALGORITHM, result.encrypted_key)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        algorithm = KeyWrapAlgorithm(wrapped.algorithm)
        result = _key_vault_call(lambda: self._client(wrapped.wrap_key_id).unwrap_key(algorithm, wrapped.data))
        return bytes(result.key)


def _key_vault_call(call: Callable[[], T]) -> T:
    """Key Vault's answers mapped to what the agent does about them (never with a key or token in the text)."""
    try:
        return call()
    except ClientAuthenticationError as exc:
        raise KeyAccessDenied(f"Key Vault refused the app's identity ({exc.status_code or 'no token'})") from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status in (401, 403):
            raise KeyAccessDenied(
                f"Key Vault answered HTTP {status}: the app's identity needs the 'Key Vault Crypto Service "
                "Encryption User' role on the credentials key (CREDENTIALS_KEY_URI)"
            ) from None
        if status in (400, 404, 409):
            raise KeyAccessDenied(
                f"Key Vault answered HTTP {status}: check CREDENTIALS_KEY_URI, and that the key exists and is enabled"
            ) from None
        raise KeyUnavailable(f"Key Vault answered HTTP {status}") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise KeyUnavailable(f"Key Vault unreachable ({type(exc).__name__})") from None


class LocalKeyFileWrapper:
    """LOCAL STACK ONLY: a key file on disk stands in for Key Vault (AES key wrap, RFC 3394). Anyone who
    can read the file can open every credential sealed under it; a deployment uses Key Vault."""

    ALGORITHM = "A256KW"
    HEADER = "# LOCAL ONLY: the local stack's credentials key-encryption key. Never use it in a deployment.\n"

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        try:
            lines = [line for line in self._path.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"]
            self._key = bytes.fromhex(lines[0].strip())
        except (OSError, ValueError, IndexError):
            raise KeyAccessDenied(f"CREDENTIALS_KEY_FILE cannot be read as a local key file: {self._path}") from None
        if len(self._key) != KEY_BYTES:
            raise KeyAccessDenied(f"CREDENTIALS_KEY_FILE does not hold a 32-byte key: {self._path}")
        self._id = "local-file:" + hashlib.sha256(b"key id\x00" + self._key).hexdigest()[:12]

    @classmethod
    def create(cls, path: Path | str) -> Path:
        """Write a new random key file (mode 0600) unless one exists; the stack calls this."""
        target = Path(path)
        if not target.exists():
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (cls.HEADER + os.urandom(KEY_BYTES).hex() + "\n").encode("ascii"))
            finally:
                os.close(fd)
        return target

    def wrap(self, key: bytes) -> WrappedKey:
        return WrappedKey(self._id, self.ALGORITHM, aes_key_wrap(self._key, key))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.wrap_key_id != self._id or wrapped.algorithm != self.ALGORITHM:
            raise KeyAccessDenied(f"a data key was wrapped by {wrapped.wrap_key_id}, not by this local key file")
        try:
            return aes_key_unwrap(self._key, wrapped.data)
        except InvalidUnwrap:
            raise SealedValueUnreadable("a wrapped data key does not unwrap with the local key file") from None


# ---- the data keys ---------------------------------------------------------------------------------------


@dataclass
class _Cached:
    key_id: str
    key: bytes
    created: datetime
    until: float


class DataKeyRing:
    """A `KeySource` (sealing.py) whose data keys live wrapped in a table; thread-safe."""

    def __init__(
        self,
        table: TableClient,
        wrapper: KeyWrapper,
        *,
        cache_ttl: timedelta = timedelta(hours=1),
        max_age: timedelta = timedelta(days=90),
        attempts: int = 4,
        backoff: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self._wrapper = wrapper
        self._ttl = cache_ttl.total_seconds()
        self._max_age = max_age
        self._attempts = attempts
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._keys: dict[str, _Cached] = {}
        self._current: str | None = None
        self._table_ready = False

    # KeySource -----------------------------------------------------------------------------------------

    def current(self) -> tuple[str, bytes]:
        with self._lock:
            cached = self._keys.get(self._current or "")
            if cached is not None and time.monotonic() < cached.until:
                return cached.key_id, cached.key
            self._ensure_table()
            entry = self._current_entry()
            self._current = entry.key_id
            return entry.key_id, entry.key

    def key(self, key_id: str) -> bytes:
        with self._lock:
            cached = self._keys.get(key_id)
            if cached is not None and time.monotonic() < cached.until:
                return cached.key
            self._ensure_table()
            try:
                entity = self._table.get_entity(PARTITION, f"dk-{key_id}")
            except ResourceNotFoundError:
                raise SealedValueUnreadable(f"data key {key_id} is not in the keyring") from None
            return self._unwrapped(key_id, entity).key

    # internals -----------------------------------------------------------------------------------------

    def _ensure_table(self) -> None:
        if not self._table_ready:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
            self._table_ready = True

    def _current_entry(self) -> _Cached:
        for _ in range(5):
            try:
                pointer = self._table.get_entity(PARTITION, CURRENT)
            except ResourceNotFoundError:
                pointer = None
            if pointer is None:
                created = self._new_data_key()
                try:
                    self._table.create_entity(
                        {"PartitionKey": PARTITION, "RowKey": CURRENT, "DataKeyId": created.key_id}
                    )
                    log.info("Credentials keyring: created data key %s", created.key_id)
                    return created
                except ResourceExistsError:
                    self._forget(created)  # another instance was first: use its key
                    continue
            key_id = str(pointer["DataKeyId"])
            entry: _Cached | None = self._keys.get(key_id)
            if entry is None or time.monotonic() >= entry.until:  # unwrapped again once the cache time is up
                try:
                    entry = self._unwrapped(key_id, self._table.get_entity(PARTITION, f"dk-{key_id}"))
                except ResourceNotFoundError:
                    log.error("Credentials keyring: the current data key %s is missing; making a new one", key_id)
                    entry = None
            if entry is not None and self._clock() - entry.created < self._max_age:
                return entry
            rotated = self._new_data_key()
            try:
                self._table.update_entity(
                    {"PartitionKey": PARTITION, "RowKey": CURRENT, "DataKeyId": rotated.key_id},
                    mode=UpdateMode.REPLACE,
                    etag=pointer.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                log.info("Credentials keyring: data key %s replaced by %s (age limit)", key_id, rotated.key_id)
                return rotated
            except (ResourceModifiedError, ResourceNotFoundError):
                self._forget(rotated)
            except HttpResponseError as exc:
                if exc.status_code != 412:
                    raise
                self._forget(rotated)
        raise KeyUnavailable("the credentials keyring kept changing")

    def _new_data_key(self) -> _Cached:
        key = os.urandom(KEY_BYTES)
        key_id = os.urandom(6).hex()
        wrapped = self._retrying(lambda: self._wrapper.wrap(key))
        now = self._clock()
        self._table.create_entity(
            {
                "PartitionKey": PARTITION,
                "RowKey": f"dk-{key_id}",
                "WrappedKey": base64.b64encode(wrapped.data).decode("ascii"),
                "WrapKeyId": wrapped.wrap_key_id,
                "WrapAlgorithm": wrapped.algorithm,
                "CreatedUtc": now,
            }
        )
        entry = _Cached(key_id, key, now, time.monotonic() + self._ttl)
        self._keys[key_id] = entry
        return entry

    def _forget(self, entry: _Cached) -> None:
        self._keys.pop(entry.key_id, None)
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(PARTITION, f"dk-{entry.key_id}")

    def _unwrapped(self, key_id: str, entity: Any) -> _Cached:
        wrapped = WrappedKey(
            str(entity["WrapKeyId"]), str(entity["WrapAlgorithm"]), base64.b64decode(str(entity["WrappedKey"]))
        )
        key = self._retrying(lambda: self._wrapper.unwrap(wrapped))
        created = entity.get("CreatedUtc") or self._clock()
        entry = _Cached(key_id, key, created, time.monotonic() + self._ttl)
        self._keys[key_id] = entry
        return entry

    def _retrying(self, call: Callable[[], T]) -> T:
        """Key Vault throttling or outage: back off (jittered, doubling) and try again, a few times."""
        for attempt in range(1, self._attempts + 1):
            try:
                return call()
            except KeyUnavailable as exc:
                if attempt == self._attempts:
                    raise KeyUnavailable(f"{exc} (after {attempt} attempts)") from None
                delay = self._backoff * 2 ** (attempt - 1)
                log.warning("Credentials keyring: %s; trying again in %.1f s", exc, delay)
                self._sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
        raise AssertionError("unreachable")


CREDENTIALS_PURPOSE = "vms credential"


def credentials_sealer(table: TableClient, wrapper: KeyWrapper, **options: Any) -> Sealer:
    """The sealer of every stored VMS credential, its data keys kept in `table` (the credentials table)."""
    return Sealer(DataKeyRing(table, wrapper, **options), CREDENTIALS_PURPOSE)
