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

    def __init__(self, table: TableClient, partition: str, row: str) -> None:
        self._table = table
        self._keys = {"PartitionKey": partition, "RowKey": row}
        self._table_ready = False

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
        return StoredGrant(
            refresh_token=entity["RefreshToken"],
            seed_fingerprint=entity.get("SeedFingerprint", ""),
            access_token=entity.get("AccessToken") or None,
            access_expires_at=entity.get("AccessExpiresAt"),
            refresh_claimed_until=entity.get("RefreshClaimedUntil"),
            etag=entity.metadata["etag"],
        )

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
            "RefreshToken": grant.refresh_token,
            "SeedFingerprint": grant.seed_fingerprint,
            "AccessToken": grant.access_token or "",
        }
        if grant.access_expires_at is not None:
            entity["AccessExpiresAt"] = grant.access_expires_at
        if grant.refresh_claimed_until is not None:
            entity["RefreshClaimedUntil"] = grant.refresh_claimed_until
        return entity
