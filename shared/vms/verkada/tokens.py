"""Verkada's short-lived credentials, minted once and shared by every instance of the agent.

An API token (`POST /token` with the API key) and a streaming JWT (`GET /cameras/v1/footage/token`)
each last 30 minutes and cannot be refreshed; an organisation has at most 10 API keys and every mint
counts against its 300 requests a minute. So a credential is kept in memory and in an Azure Table
Storage row shared by all instances (row key: a fingerprint of the API key, never the key): an instance
uses a stored credential while it has more than `margin` to live, and only one instance mints a new
one — it claims the row by ETag compare-and-swap, the others wait for its result. A credential the
API refused (401) is forgotten here and in the row, so the next use mints once. The stored credential is
sealed (shared/secrets), bound to its row; a plain-text row of an older version is rewritten sealed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.secrets.sealing import SealedValueUnreadable, Sealer, is_sealed
from shared.vms.errors import VmsTransient
from shared.vms.grant_store import fingerprint

log = logging.getLogger(__name__)

VENDOR = "verkada"
PARTITION = "verkada"


@dataclass(frozen=True)
class Credential:
    value: str = field(repr=False)
    expires_at: datetime


Mint = Callable[[], Credential]


@dataclass(frozen=True)
class _Row:
    credential: Credential | None
    claimed_until: datetime | None
    etag: str | None


class SharedCredentialStore:
    """One row per (credential kind, API key) in a table; every write is a compare-and-swap."""

    def __init__(self, table: TableClient, kind: str, api_key: str, sealer: Sealer) -> None:
        self._table = table
        self._keys = {"PartitionKey": PARTITION, "RowKey": f"{kind}-{fingerprint(api_key)}"}
        self._sealer = sealer
        self._context = f"{table.table_name}/{PARTITION}/{self._keys['RowKey']}/Value"
        self._ready = False

    def read(self) -> _Row:
        if not self._ready:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
            self._ready = True
        try:
            entity = self._table.get_entity(self._keys["PartitionKey"], self._keys["RowKey"])
        except ResourceNotFoundError:
            return _Row(None, None, None)
        stored, expires = entity.get("Value") or "", entity.get("ExpiresAt")
        try:
            value = self._sealer.open(stored, self._context)
        except SealedValueUnreadable as exc:  # gone for good (not an outage): mint a new one
            log.warning("Verkada: a stored token cannot be opened (%s); a new one will be minted", exc)
            value = ""
        credential = Credential(value, expires) if value and expires else None
        row = _Row(credential, entity.get("ClaimedUntil"), entity.metadata["etag"])
        if stored and not is_sealed(stored):
            # Written in plain text by an earlier version: rewrite it sealed, once (whoever wins the swap).
            if self.write(row.etag, credential, row.claimed_until) is not None:
                log.info("Verkada: a stored token was rewritten sealed (it was in plain text)")
            return self.read()
        return row

    def write(self, etag: str | None, credential: Credential | None, claimed_until: datetime | None) -> str | None:
        """Creates (etag None) or replaces the row if unchanged since `etag`; the new etag, or None if we lost."""
        value = self._sealer.seal(credential.value, self._context) if credential else ""
        entity: dict[str, object] = {**self._keys, "Value": value}
        if credential is not None:
            entity["ExpiresAt"] = credential.expires_at
        if claimed_until is not None:
            entity["ClaimedUntil"] = claimed_until
        try:
            if etag is None:
                return str(self._table.create_entity(entity)["etag"])
            replaced = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
            return str(replaced["etag"])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return None
        except HttpResponseError as exc:
            if exc.status_code == 412:
                return None
            raise


class SharedCredential:
    """Thread-safe; one per worker process and credential kind."""

    def __init__(
        self,
        name: str,
        store: SharedCredentialStore,
        mint: Mint,
        *,
        margin: timedelta = timedelta(minutes=5),
        claim: timedelta = timedelta(seconds=30),
        wait_limit: float = 45.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._name = name
        self._store = store
        self._mint = mint
        self._margin = margin
        self._claim = claim
        self._wait_limit = wait_limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._cached: Credential | None = None

    def token(self) -> str:
        """A credential that is valid now: ours, the shared one, or a fresh mint (one instance at a time)."""
        with self._lock:
            if self._usable(self._cached):
                assert self._cached is not None
                return self._cached.value
            self._cached = self._obtain()
            return self._cached.value

    def invalidate(self, rejected: str) -> None:
        """The API refused `rejected` (401): nobody may use it again; the next token() mints once."""
        with self._lock:
            if self._cached and self._cached.value == rejected:
                self._cached = None
            row = self._store.read()
            if row.credential and row.credential.value == rejected and row.etag:
                self._store.write(row.etag, None, None)

    def _usable(self, credential: Credential | None) -> bool:
        return credential is not None and self._clock() < credential.expires_at - self._margin

    def _obtain(self) -> Credential:
        waiting_since = time.monotonic()
        while True:
            row = self._store.read()
            if self._usable(row.credential):
                assert row.credential is not None
                return row.credential
            now = self._clock()
            if row.claimed_until and row.claimed_until > now:
                if time.monotonic() - waiting_since > self._wait_limit:
                    raise VmsTransient(f"Verkada: another instance has been minting the {self._name} for too long")
                self._sleep(0.2)
                continue
            claimed = self._store.write(row.etag, row.credential, now + self._claim)
            if claimed is None:
                continue  # another instance changed the row first: look again
            try:
                credential = self._mint()
            except BaseException:
                self._store.write(claimed, row.credential, None)  # release the claim for the others
                raise
            if self._store.write(claimed, credential, None) is None:
                log.warning("Verkada: the claim on the %s row expired while minting; keeping ours", self._name)
            log.info("Verkada: minted a %s (valid until %s) and shared it", self._name, credential.expires_at)
            return credential
