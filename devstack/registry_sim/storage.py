"""The upload container in Azure Storage (Azurite): SAS links and blob clients for verification."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobClient, BlobSasPermissions, BlobServiceClient, generate_blob_sas

from .clock import utc_now

DEFAULT_CONTAINER = "clearance-uploads"
# bounded download chunks: verification streams the blob, whatever its size
DOWNLOAD_CHUNK_BYTES = 4 * 1024 * 1024
READ_LINK_TTL = timedelta(hours=1)
SAS_CLOCK_SKEW = timedelta(minutes=5)


class UploadStorage:
    def __init__(self, connection_string: str, container: str = DEFAULT_CONTAINER) -> None:
        self.container = container
        self._service = BlobServiceClient.from_connection_string(
            connection_string,
            max_single_get_size=DOWNLOAD_CHUNK_BYTES,
            max_chunk_get_size=DOWNLOAD_CHUNK_BYTES,
        )
        credential = self._service.credential
        self._account_name: str = credential.account_name
        self._account_key: str = credential.account_key

    def ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._service.create_container(self.container)

    def blob_client(self, blob_name: str) -> BlobClient:
        return self._service.get_blob_client(self.container, blob_name)

    def write_sas_url(self, blob_name: str, expiry: datetime) -> str:
        """Create + write only: the agent can upload and set metadata, never read or list."""
        return self._sas_url(blob_name, BlobSasPermissions(create=True, write=True), expiry)

    def read_sas_url(self, blob_name: str) -> str:
        return self._sas_url(blob_name, BlobSasPermissions(read=True), utc_now() + READ_LINK_TTL)

    def _sas_url(self, blob_name: str, permission: BlobSasPermissions, expiry: datetime) -> str:
        sas = generate_blob_sas(
            self._account_name,
            self.container,
            blob_name,
            account_key=self._account_key,
            permission=permission,
            expiry=expiry,
            start=min(expiry, utc_now()) - SAS_CLOCK_SKEW,
        )
        return f"{self.blob_client(blob_name).url}?{sas}"
