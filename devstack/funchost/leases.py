"""A cross-host lock as the real host's singleton: a lease on a blob in `azure-webjobs-hosts`, renewed
in the background while held. If the holder dies, its lease expires and another host acquires it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from .storage import redact

log = logging.getLogger("devstack.funchost.leases")

HOSTS_CONTAINER = "azure-webjobs-hosts"


class BlobLease:
    def __init__(self, service: BlobServiceClient, blob_name: str, *, owner: str, duration: int = 15) -> None:
        if not 15 <= duration <= 60:
            raise ValueError("a blob lease lasts 15 to 60 seconds")
        self.blob_name = blob_name
        self.owner = owner
        self.duration = duration
        self._container = service.get_container_client(HOSTS_CONTAINER)
        self._blob = self._container.get_blob_client(blob_name)
        self._lease: BlobLeaseClient | None = None
        self._held = threading.Event()
        self._stop_renewing = threading.Event()
        self._renewer: threading.Thread | None = None
        self._blob_ready = False

    @property
    def held(self) -> bool:
        return self._held.is_set()

    def try_acquire(self) -> bool:
        """True when this host now holds the lease; False when another host holds it."""
        if self.held:
            return True
        self._ensure_blob()
        lease = BlobLeaseClient(self._blob)
        try:
            lease.acquire(lease_duration=self.duration)
        except HttpResponseError as error:
            if error.status_code == 409:  # LeaseAlreadyPresent: another host is the singleton
                return False
            raise
        self._lease = lease
        try:  # who holds it, for people looking at the container (the real host writes the same key)
            self._blob.set_blob_metadata({"FunctionInstance": self.owner}, lease=lease)
        except AzureError as error:
            log.debug("could not label lock %s: %s", self.blob_name, redact(error))
        self._held.set()
        self._stop_renewing.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name=f"lease {self.blob_name}", daemon=True)
        self._renewer.start()
        return True

    def release(self) -> None:
        self._stop_renewing.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=5)
        self._renewer = None
        lease, self._lease = self._lease, None
        if lease is not None and self.held:
            try:
                lease.release()
            except AzureError as error:
                log.warning("could not release lock %s (it will expire): %s", self.blob_name, redact(error))
        self._held.clear()

    def _ensure_blob(self) -> None:
        if self._blob_ready:
            return
        with contextlib.suppress(ResourceExistsError):
            self._container.create_container()
        if not self._blob.exists():
            with contextlib.suppress(ResourceExistsError):  # created by another host meanwhile
                self._blob.upload_blob(b"", overwrite=False)
        self._blob_ready = True

    def _renew_loop(self) -> None:
        last_renewed = time.monotonic()
        while not self._stop_renewing.wait(self.duration / 3):
            lease = self._lease
            if lease is None:
                return
            try:
                lease.renew()
                last_renewed = time.monotonic()
            except HttpResponseError as error:
                if error.status_code == 409:  # someone else has it now
                    log.warning("lost lock %s: %s", self.blob_name, error.reason)
                    self._held.clear()
                    return
                log.warning("renewing lock %s failed (will retry): %s", self.blob_name, error.reason)
            except AzureError as error:
                log.warning("renewing lock %s failed (will retry): %s", self.blob_name, redact(error))
            if time.monotonic() - last_renewed >= self.duration - 1:
                log.warning("lost lock %s: not renewed for %d s", self.blob_name, self.duration)
                self._held.clear()
                return
