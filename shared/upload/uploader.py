"""Stream a file through encryption into Azure Blob Storage, with flat memory.

One byte's path: source chunk → SHA-256 (background thread) → AES-CBC `update_into` a block buffer →
Put Block on a worker thread → buffer back to the pool. Encryption is sequential (CBC), uploads are
parallel; at most `concurrency + 1` block buffers exist, whatever the file size. A file whose ciphertext
fits in one block goes up as a single Put Blob. The `encryptiondata` metadata is set by the final call
(Put Block List or Put Blob), so a blob is never visible without it.

The Azure SDK is only the transport here: its own client-side encryption is never used (see
docs/encryption.md for why).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import BlobBlock, BlobClient, ContentSettings, ExponentialRetry

from shared.crypto.envelope import AES_BLOCK, METADATA_NAME, StreamEncryptor
from shared.crypto.jwk import JwkError, public_key_from_jwk
from shared.http.session import storage_transport
from shared.redact import redact_url
from shared.telemetry.context import carry_context
from shared.telemetry.tracing import dependency, mark_failed
from shared.upload.errors import (
    RecipientKeyRejected,
    SasRejected,
    UploadError,
    UploadLimitExceeded,
    UploadTransient,
)
from shared.upload.target import UploadTargetPolicy

log = logging.getLogger(__name__)

SHARED_POOL_SIZE = 64
"""Connections kept for uploads: up to 12 items in flight per instance, each with up to 4 blocks in flight."""

MiB = 1024 * 1024
MAX_BLOCKS = 50_000
MAX_BLOCK_SIZE = 4000 * MiB
MAX_METADATA_BYTES = 8 * 1024
BLOCK_ID_WIDTH = 6  # "000000".."049999": every id the same length, as Azure requires
READ_CHUNK = 1 * MiB

ProgressCallback = Callable[[int], None]
CommitCallback = Callable[[int, str], None]
"""Called with the plaintext size and SHA-256 right before the blob is committed; raising stops the commit."""
Source = Iterable[bytes] | BinaryIO


@dataclass(frozen=True)
class UploadSettings:
    block_size: int = 4 * MiB
    """Smallest block; grown from the size hint, and while uploading if a stream outgrows its hint."""
    concurrency: int = 4
    """Blocks uploading at once. Memory ≈ (concurrency + 1) × block size."""
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    storage_retries: int = 3


@dataclass(frozen=True)
class UploadResult:
    size: int
    """Plaintext bytes (what Complete* reports)."""
    sha256: str
    """Plaintext SHA-256, lowercase hex."""
    encrypted_size: int
    blocks: int
    seconds: float


class BlockSizer:
    """Chooses each block's size so a blob never needs more than 50,000 blocks.

    The first size covers the hinted length in half the block budget; each time half of the remaining
    budget is used, the size doubles, so a stream far larger than hinted still fits.
    """

    def __init__(self, base: int, size_hint: int | None) -> None:
        if base % AES_BLOCK:
            raise ValueError("block size must be a multiple of 16")
        size = base
        if size_hint:
            per_block = -(-(size_hint + AES_BLOCK) // (MAX_BLOCKS // 2))
            size = -(-per_block // base) * base  # a multiple of the base size, hence of 16
        self.size = min(size, MAX_BLOCK_SIZE)
        self.count = 0
        self._grow_at = MAX_BLOCKS // 2

    def next_size(self) -> int:
        if self.count >= MAX_BLOCKS:
            raise UploadLimitExceeded(f"the file needs more than {MAX_BLOCKS} blocks")
        if self.count >= self._grow_at:
            self.size = min(MAX_BLOCK_SIZE, self.size * 2)
            self._grow_at += max(1, (MAX_BLOCKS - self._grow_at) // 2)
        self.count += 1
        return self.size


class _BackgroundHasher:
    """SHA-256 on its own thread: hashlib releases the GIL, so hashing overlaps encryption on 2 cores."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _ParallelStager:
    """Puts blocks on a thread pool, at most `concurrency` in flight, recycling their buffers."""

    def __init__(self, blob: BlobClient, concurrency: int) -> None:
        self._blob = blob
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="put-block")
        self._free: queue.Queue[bytearray | None] = queue.Queue()
        for _ in range(concurrency):
            self._free.put(None)  # allocated lazily, so small files cost one buffer
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self.block_ids: list[str] = []
        self.uploaded = 0

    def acquire(self, size: int) -> bytearray:
        """A buffer for the next block; waits while every buffer is in flight."""
        while True:
            self._raise_if_failed()
            try:
                buffer = self._free.get(timeout=0.2)
            except queue.Empty:
                continue
            if buffer is None or len(buffer) < size + AES_BLOCK:
                buffer = bytearray(size + AES_BLOCK)
            return buffer

    def stage(self, buffer: bytearray, length: int) -> None:
        block_id = f"{len(self.block_ids):0{BLOCK_ID_WIDTH}d}"
        self.block_ids.append(block_id)
        self._futures.append(self._executor.submit(carry_context(self._put), block_id, buffer, length))

    def _put(self, block_id: str, buffer: bytearray, length: int) -> None:
        try:
            if self._failure is None:
                # A view, not a copy, of the pooled buffer: the SDK sends any bytes-like body (its stubs say bytes).
                self._blob.stage_block(block_id, memoryview(buffer)[:length], length=length)  # type: ignore[arg-type]
                with self._lock:
                    self.uploaded += length
        except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
            with self._lock:
                self._failure = self._failure or exc
        finally:
            self._free.put(buffer)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def finish(self) -> list[str]:
        wait(self._futures)
        self._raise_if_failed()
        return self.block_ids

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def first_block(block_size: int, size_hint: int | None) -> int:
    """A file announced smaller than a block gets a buffer its own size (a thumbnail needs 200 KiB, not
    4 MiB); if it turns out larger, later blocks are full-sized. Always a multiple of the AES block."""
    if not size_hint or size_hint >= block_size:
        return block_size
    return max(AES_BLOCK, -(-(size_hint + AES_BLOCK) // AES_BLOCK) * AES_BLOCK)


def iter_chunks(source: Source, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Chunks from an iterable of bytes or a binary file-like object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError("pass an iterable of chunks or a file object, not the whole file in memory")
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            yield chunk
        return
    for chunk in source:
        if chunk:
            yield chunk if isinstance(chunk, bytes) else bytes(chunk)


class EncryptedBlobUploader:
    """Encrypts a stream for the ticket's key and uploads it to the ticket's SAS URI."""

    def __init__(
        self,
        target_policy: UploadTargetPolicy | None = None,
        settings: UploadSettings | None = None,
        *,
        transport: Any = None,
    ) -> None:
        self.target_policy = target_policy or UploadTargetPolicy()
        self.settings = settings or UploadSettings()
        # One transport (one pool of connections) for every blob client of this worker: a 1,000-camera
        # thumbnail job must not pay 1,000 TLS handshakes. The session outlives each client's close().
        self._transport = transport or storage_transport(
            SHARED_POOL_SIZE, connection_timeout=self.settings.connect_timeout, read_timeout=self.settings.read_timeout
        )

    def upload(
        self,
        sas_uri: str,
        recipient_jwk: Mapping[str, Any],
        source: Source,
        *,
        content_type: str = "application/octet-stream",
        size_hint: int | None = None,
        progress: ProgressCallback | None = None,
        before_commit: CommitCallback | None = None,
    ) -> UploadResult:
        """Encrypt and upload `source`; nothing is visible at `sas_uri` until the final commit, which happens
        only after `before_commit` (if given) returned."""
        self.target_policy.check(sas_uri)
        encryptor = _encryptor_for(recipient_jwk)
        metadata = {METADATA_NAME: encryptor.metadata_value()}
        _check_metadata_size(metadata)
        started = time.monotonic()
        blob = self._blob_client(sas_uri)
        with dependency("Blob", "upload", "PUT", sas_uri) as span:
            try:
                result = self._stream(
                    blob, encryptor, source, metadata, content_type, size_hint, progress, before_commit
                )
            except AzureError as exc:
                mark_failed(span, type(exc).__name__)
                raise _storage_error(exc, sas_uri) from None
            finally:
                blob.close()
            span.set_attributes({"clearance.bytes": result.size, "clearance.blocks": result.blocks})
        elapsed = time.monotonic() - started
        log.debug(
            "Uploaded %d bytes (%d encrypted, %d block(s)) in %.2f s to %s",
            result.size,
            result.encrypted_size,
            result.blocks,
            elapsed,
            redact_url(sas_uri),
        )
        return replace(result, seconds=elapsed)

    def _blob_client(self, sas_uri: str) -> BlobClient:
        # The storage SDK's default backoff starts at 15 s: one reset connection would hold a block (and the
        # whole file) that long. A block is small and idempotent to re-send: retry after ~1, 3 and 5 s, and
        # leave longer outages to the work item's own retry (which backs off for minutes).
        retry = ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=self.settings.storage_retries, random_jitter_range=1
        )
        return BlobClient.from_blob_url(
            sas_uri,
            connection_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            retry_policy=retry,
            transport=self._transport,
        )

    def _stream(
        self,
        blob: BlobClient,
        encryptor: StreamEncryptor,
        source: Source,
        metadata: dict[str, str],
        content_type: str,
        size_hint: int | None,
        progress: ProgressCallback | None,
        before_commit: CommitCallback | None,
    ) -> UploadResult:
        sizer = BlockSizer(self.settings.block_size, size_hint)
        hasher = _BackgroundHasher()
        stager = _ParallelStager(blob, self.settings.concurrency)
        content_settings = ContentSettings(content_type=content_type)
        try:
            block_size = first_block(sizer.next_size(), size_hint)
            buffer = bytearray(block_size + AES_BLOCK)
            filled = 0  # ciphertext bytes in `buffer`
            room = block_size  # plaintext bytes this block still takes; keeps blocks cipher-aligned
            for chunk in iter_chunks(source):
                hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    take = min(len(view), room)
                    filled += encryptor.encrypt_into(view[:take], memoryview(buffer)[filled:])
                    view, room = view[take:], room - take
                    if room == 0:
                        stager.stage(buffer, filled)
                        if progress:
                            progress(min(stager.uploaded, encryptor.plaintext_length))
                        block_size = sizer.next_size()
                        buffer, filled, room = stager.acquire(block_size), 0, block_size
            filled += encryptor.finish_into(memoryview(buffer)[filled:])
            sha256 = hasher.hexdigest()
            if stager.block_ids:
                stager.stage(buffer, filled)
                block_ids = stager.finish()
            if before_commit:
                before_commit(encryptor.plaintext_length, sha256)
            if not stager.block_ids:
                blob.upload_blob(
                    bytes(memoryview(buffer)[:filled]),  # small; the SDK's Put Blob path wants bytes
                    length=filled,
                    overwrite=True,
                    metadata=metadata,
                    content_settings=content_settings,
                )
                encrypted = filled
            else:
                blocks = [BlobBlock(block_id) for block_id in block_ids]
                blob.commit_block_list(blocks, metadata=metadata, content_settings=content_settings)
                encrypted = stager.uploaded
        finally:
            hasher.close()
            stager.close()
        if progress:
            progress(encryptor.plaintext_length)
        return UploadResult(encryptor.plaintext_length, sha256, encrypted, max(1, len(stager.block_ids)), 0.0)


def _encryptor_for(jwk: Mapping[str, Any]) -> StreamEncryptor:
    try:
        key = public_key_from_jwk(jwk)
    except JwkError as exc:
        raise RecipientKeyRejected(f"the upload ticket's encryption key is unusable: {exc}") from None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise RecipientKeyRejected("the upload ticket's encryption key has no 'kid'")
    return StreamEncryptor(key, kid)


def _check_metadata_size(metadata: Mapping[str, str]) -> None:
    size = sum(len(name) + len(value.encode("utf-8")) for name, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise UploadLimitExceeded(f"blob metadata would be {size} bytes; Azure allows {MAX_METADATA_BYTES}")


def _storage_error(exc: AzureError, sas_uri: str) -> UploadError:
    """Map an SDK error to ours; the SDK's own message is dropped (it may echo request details)."""
    where = redact_url(sas_uri)
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        raw_code = getattr(exc, "error_code", None)
        code = getattr(raw_code, "value", raw_code)  # Azure's own code, not the SDK enum's name
        status, code = exc.status_code, code or (exc.reason or "")
        if status == 403:
            return SasRejected(
                f"storage refused the upload SAS (HTTP 403 {code}): it has expired or lacks create/write; "
                f"target {where}"
            )
        if status in (408, 429) or status >= 500:
            return UploadTransient(f"storage answered HTTP {status} {code} after retries; target {where}")
        return UploadError(f"storage answered HTTP {status} {code}; target {where}")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return UploadTransient(f"storage unreachable ({type(exc).__name__}) after retries; target {where}")
    return UploadError(f"upload failed ({type(exc).__name__}); target {where}")


__all__ = [
    "BlockSizer",
    "EncryptedBlobUploader",
    "UploadResult",
    "UploadSettings",
    "iter_chunks",
]
