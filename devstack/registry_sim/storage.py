"""The upload container in Azure Storage (Azurite): SAS links and blob clients for verification."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobSasPermissions, BlobServiceClient, LinearRetry, generate_blob_sas

from .clock import utc_now

DEFAULT_CONTAINER = "clearance-uploads"
DOWNLOAD_CHUNK_BYTES = 16 * 1024 * 1024
"""Verification streams the blob in bounded chunks, whatever its size. Not smaller: Azurite spends tens of ms of
its single thread on each ranged Get Blob of a blob made of 4 MiB blocks, whatever the range's length, so 4 MiB
chunks made it spend more CPU reading an agent's media file back than receiving it (and Azurite, single-threaded,
is what the agent's uploads wait on). 16 MiB cuts that by three quarters."""
READ_LINK_TTL = timedelta(hours=1)
SAS_CLOCK_SKEW = timedelta(minutes=5)
READ_RETRY: dict[str, Any] = {"backoff": 0.5, "random_jitter_range": 0.25, "retry_total": 5}
"""The simulator's own reads of Azurite: a reset keep-alive connection is retried within half a second,
not after the SDK's default 15 s, which made a verification (and so a Complete* call) 15 s slower."""


class UploadStorage:
    def __init__(self, connection_string: str, container: str = DEFAULT_CONTAINER) -> None:
        self.container = container
        self._service = BlobServiceClient.from_connection_string(
            connection_string,
            max_single_get_size=DOWNLOAD_CHUNK_BYTES,
            max_chunk_get_size=DOWNLOAD_CHUNK_BYTES,
            retry_policy=LinearRetry(**READ_RETRY),
        )
        credential = self._service.credential
        self.account_name: str = credential.account_name
        self._account_key: str = credential.account_key

    @property
    def endpoint(self) -> str:
        """Scheme and host of the blob service (Azurite), e.g. http://127.0.0.1:10000."""
        parts = urlsplit(self._service.url)
        return f"{parts.scheme}://{parts.netloc}"

    def ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._service.create_container(self.container)

    def blob_client(self, blob_name: str) -> BlobClient:
        return self._service.get_blob_client(self.container, blob_name)

    def write_sas_url(self, blob_name: str, expiry: datetime) -> str:
        """Create + write only: the agent can upload and set metadata, never read or list."""
        return self._sas_url(blob_name, BlobSasPermissions(create=True, write=True), expiry)

    @staticmethod
    def via(base_url: str, sas_url: str) -> str:
        """The same SAS URL, path and query unchanged, on another host (the simulator's upload proxy)."""
        proxy = urlsplit(base_url)
        return urlunsplit(urlsplit(sas_url)._replace(scheme=proxy.scheme, netloc=proxy.netloc))

    def bytes_received(self, blob_name: str) -> int:
        """Every byte storage holds for a blob: its committed length plus its uncommitted blocks.

        The committed length (blocks committed by Put Block List, or a whole Put Blob) is the blob's size;
        the uncommitted list (Get Block List) holds the blocks staged but never committed (an abandoned
        upload). A block or blob sent again under the same id or name counts once, and blocks that a commit
        left out are gone (Azure discards them). Two reads rather than one Get Block List's
        `x-ms-blob-content-length` header: a `raw_response_hook` is dropped when the SDK retries a request.
        """
        blob = self.blob_client(blob_name)
        try:
            committed_length = blob.get_blob_properties().size
        except ResourceNotFoundError:
            committed_length = 0  # nothing committed; blocks may still be staged
        try:
            _committed, uncommitted = blob.get_block_list("uncommitted")
        except ResourceNotFoundError:
            return committed_length
        return committed_length + sum(block.size for block in uncommitted)

    def read_sas_url(self, blob_name: str) -> str:
        return self._sas_url(blob_name, BlobSasPermissions(read=True), utc_now() + READ_LINK_TTL)

    def _sas_url(self, blob_name: str, permission: BlobSasPermissions, expiry: datetime) -> str:
        sas = generate_blob_sas(
            self.account_name,
            self.container,
            blob_name,
            account_key=self._account_key,
            permission=permission,
            expiry=expiry,
            start=min(expiry, utc_now()) - SAS_CLOCK_SKEW,
        )
        return f"{self.blob_client(blob_name).url}?{sas}"
