"""The VMS OAuth grant (refresh + access token) in Azure Table Storage, shared by every instance.

EEN rotates refresh tokens: each refresh invalidates the previous one. Losing the newest refresh token
means a customer must consent again in a browser, so it is stored durably *before* the new access
token is used, and every change is an ETag compare-and-swap so concurrent instances never overwrite a
newer token with an older one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.secrets.sealing import SealedValueUnreadable, Sealer, is_sealed

log = logging.getLogger(__name__)


def fingerprint(secret: str) -> str:
    """A short non-reversible tag of a secret, to tell whether the configured seed changed."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StoredGrant:
    refresh_token: str = field(repr=False)
    seed_fingerprint: str
    access_token: str | None = field(default=None, repr=False)
    access_expires_at: datetime | None = None
    refresh_claimed_until: datetime | None = None
    """While set in the future, one instance is refreshing and the others wait for its result."""
    etag: str | None = field(default=None, compare=False)

    def with_(self, **changes: object) -> StoredGrant:
        return replace(self, **changes)  # type: ignore[arg-type]


class GrantStore:
    """One grant per (partition, row) of a table."""

    def __init__(self, table: TableClient, partition: str, row: str, sealer: Sealer) -> None:
        self._table = table
        self._keys = {"PartitionKey": partition, "RowKey": row}
        self._sealer = sealer
        self._table_ready = False

    def _context(self, column: str) -> str:
        return f"{self._table.table_name}/{self._keys['PartitionKey']}/{self._keys['RowKey']}/{column}"

    def _ensure_table(self) -> None:
        if not self._table_ready:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
            self._table_ready = True

    def read(self) -> StoredGrant | None:
        self._ensure_table()
        try:
            entity = self._table.get_entity(
                **{"partition_key": self._keys["PartitionKey"], "row_key": self._keys["RowKey"]}
            )
        except ResourceNotFoundError:
            return None
        refresh, access = entity["RefreshToken"], entity.get("AccessToken") or ""
        try:
            opened = self._sealer.open(refresh, self._context("RefreshToken"))
            opened_access = self._sealer.open(access, self._context("AccessToken"))
        except SealedValueUnreadable as exc:
            # Not a passing outage (that is KeyUnavailable, raised): the value or its data key is gone for
            # good. Read as an empty grant: a newly configured consent replaces it, else refreshing fails
            # with "consent again".
            log.error("The stored VMS grant cannot be opened (%s): a new consent is needed", exc)
            opened, opened_access = "", ""
        grant = StoredGrant(
            refresh_token=opened,
            seed_fingerprint=entity.get("SeedFingerprint", ""),
            access_token=opened_access or None,
            access_expires_at=entity.get("AccessExpiresAt"),
            refresh_claimed_until=entity.get("RefreshClaimedUntil"),
            etag=entity.metadata["etag"],
        )
        if not opened or (is_sealed(refresh) and (not access or is_sealed(access))):
            return grant
        # Written in plain text by an earlier version: rewrite it sealed, once (whoever wins the swap).
        assert grant.etag is not None
        migrated = self.replace(grant, grant.etag)
        if migrated is not None:
            log.info("Stored VMS grant rewritten sealed (it was in plain text)")
            return migrated
        return self.read()

    def create(self, grant: StoredGrant) -> StoredGrant | None:
        """Insert; None when a grant already exists (another instance was first)."""
        self._ensure_table()
        try:
            metadata = self._table.create_entity(self._entity(grant))
        except ResourceExistsError:
            return None
        return grant.with_(etag=metadata["etag"])

    def replace(self, grant: StoredGrant, etag: str) -> StoredGrant | None:
        """Compare-and-swap; None when the stored grant changed since `etag` was read."""
        try:
            metadata = self._table.update_entity(
                self._entity(grant), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        except HttpResponseError as exc:
            if exc.status_code == 412:
                return None
            raise
        return grant.with_(etag=metadata["etag"])

    def overwrite(self, grant: StoredGrant) -> StoredGrant:
        """Unconditional write, only for a token we know to be the newest (we just rotated it)."""
        metadata = self._table.upsert_entity(self._entity(grant), mode=UpdateMode.REPLACE)
        return grant.with_(etag=metadata["etag"])

    def _entity(self, grant: StoredGrant) -> dict[str, object]:
        entity: dict[str, object] = {
            **self._keys,
            "RefreshToken": self._sealer.seal(grant.refresh_token, self._context("RefreshToken")),
            "SeedFingerprint": grant.seed_fingerprint,
            "AccessToken": self._sealer.seal(grant.access_token, self._context("AccessToken"))
            if grant.access_token
            else "",
        }
        if grant.access_expires_at is not None:
            entity["AccessExpiresAt"] = grant.access_expires_at
        if grant.refresh_claimed_until is not None:
            entity["RefreshClaimedUntil"] = grant.refresh_claimed_until
        return entity
