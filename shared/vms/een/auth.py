"""EEN OAuth2 with rotating refresh tokens, safe across function instances.

Only one instance refreshes at a time: it claims the stored grant (ETag compare-and-swap), refreshes,
stores the new refresh token *before* using the new access token, and releases the claim. Others
wait for its result instead of refreshing with a token that is about to be invalidated, so two
instances never cause a storm of 401s or lose the newest refresh token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import Field, ValidationError

from shared.http.oauth import oauth_error
from shared.http.retry import RetryingSender, TransportFailure
from shared.vms.errors import VmsAuthError, VmsAuthRevoked, VmsRateLimited, VmsTransient
from shared.vms.grant_store import GrantStore, StoredGrant, fingerprint
from shared.wire import CaseInsensitiveModel

log = logging.getLogger(__name__)

SCOPE = "vms.all"
VENDOR = "een"


class TokenResponse(CaseInsensitiveModel):
    access_token: str = Field(alias="access_token", min_length=1, repr=False)
    refresh_token: str = Field(alias="refresh_token", min_length=1, repr=False)
    expires_in: float = Field(alias="expires_in", gt=0)


class _InvalidGrant(Exception):
    pass


@dataclass(frozen=True)
class EenCredentials:
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    seed_refresh_token: str = field(repr=False)
    """From the customer's one-time consent; used only while the store has no (newer) grant."""


class EenTokens:
    """Thread-safe; one per worker process, sharing the grant with other processes through the store."""

    def __init__(
        self,
        credentials: EenCredentials,
        store: GrantStore,
        sender: RetryingSender,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        expiry_margin: timedelta = timedelta(minutes=5),
        claim_duration: timedelta = timedelta(seconds=30),
        wait_limit: float = 45.0,
    ) -> None:
        self._credentials = credentials
        self._store = store
        self._sender = sender
        self._clock = clock
        self._sleep = sleep
        self._margin = expiry_margin
        self._claim_duration = claim_duration
        self._wait_limit = wait_limit
        self._seed_fingerprint = fingerprint(credentials.seed_refresh_token)
        self._lock = threading.Lock()
        self._cached: tuple[str, datetime] | None = None

    def token(self) -> str:
        """A valid access token: the cached one, the stored one, or a refresh (one instance at a time)."""
        with self._lock:
            now = self._clock()
            if self._cached and now < self._cached[1] - self._margin:
                return self._cached[0]
            token, expires = self._obtain()
            self._cached = (token, expires)
            return token

    def invalidate(self, rejected: str) -> None:
        """After a 401 with `rejected`: forget it here and in the store, so nobody reuses it."""
        with self._lock:
            if self._cached and self._cached[0] == rejected:
                self._cached = None
            grant = self._store.read()
            if grant and grant.access_token == rejected and grant.etag:
                self._store.replace(grant.with_(access_token=None, access_expires_at=None), grant.etag)

    def _obtain(self) -> tuple[str, datetime]:
        waited_since = time.monotonic()
        while True:
            grant = self._current_grant()
            now = self._clock()
            if grant.access_token and grant.access_expires_at and now < grant.access_expires_at - self._margin:
                return grant.access_token, grant.access_expires_at
            if grant.refresh_claimed_until and grant.refresh_claimed_until > now:
                if time.monotonic() - waited_since > self._wait_limit:
                    raise VmsTransient(
                        "EEN: another instance has been refreshing the token for too long", vendor=VENDOR
                    )
                self._sleep(0.25)
                continue
            assert grant.etag is not None
            claimed = self._store.replace(grant.with_(refresh_claimed_until=now + self._claim_duration), grant.etag)
            if claimed is None:
                continue  # someone else changed it first: look again
            result = self._refresh_with(claimed)
            if result is not None:
                return result

    def _current_grant(self) -> StoredGrant:
        grant = self._store.read()
        if grant is None:
            seeded = StoredGrant(self._credentials.seed_refresh_token, self._seed_fingerprint)
            created = self._store.create(seeded)
            if created is not None:
                log.info("EEN: stored the configured refresh token (first start)")
                return created
            grant = self._store.read()
            assert grant is not None
        if grant.seed_fingerprint != self._seed_fingerprint and grant.etag:
            # The operator configured a refresh token from a new consent: it replaces the stored grant.
            fresh = StoredGrant(self._credentials.seed_refresh_token, self._seed_fingerprint)
            replaced = self._store.replace(fresh, grant.etag)
            if replaced is not None:
                log.warning("EEN: a new refresh token was configured (new consent); it replaces the stored one")
                return replaced
            return self._current_grant()
        return grant

    def _refresh_with(self, claimed: StoredGrant) -> tuple[str, datetime] | None:
        """Refresh under our claim; None when someone else rotated the token meanwhile (look again)."""
        assert claimed.etag is not None
        requested = self._clock()
        try:
            parsed = self._request_refresh(claimed.refresh_token)
        except _InvalidGrant:
            latest = self._store.read()
            if latest is not None and latest.refresh_token != claimed.refresh_token:
                return None
            if latest is not None and latest.etag:
                self._store.replace(latest.with_(refresh_claimed_until=None), latest.etag)
            raise VmsAuthRevoked(
                "EEN refused the stored refresh token (invalid_grant): the authorization was revoked or lost. "
                "An administrator must consent again and configure the new refresh token (EEN_REFRESH_TOKEN)",
                vendor=VENDOR,
            ) from None
        except BaseException:
            self._store.replace(claimed.with_(refresh_claimed_until=None), claimed.etag)
            raise
        expires = requested + timedelta(seconds=parsed.expires_in)
        rotated = StoredGrant(
            refresh_token=parsed.refresh_token,
            seed_fingerprint=claimed.seed_fingerprint,
            access_token=parsed.access_token,
            access_expires_at=expires,
        )
        # Durable first: the old refresh token is already invalid, this one must not be lost.
        if self._store.replace(rotated, claimed.etag) is None:
            log.warning("EEN: the refresh claim expired while refreshing; storing the new token anyway")
            self._store.overwrite(rotated)
        log.info("EEN: refreshed the access token (valid %d s) and stored the rotated refresh token", parsed.expires_in)
        return parsed.access_token, expires

    def _request_refresh(self, refresh_token: str) -> TokenResponse:
        credentials = self._credentials
        try:
            response = self._sender.send(
                "POST",
                credentials.token_url,
                operation="een_token_refresh",
                idempotent=False,  # a lost response after rotation cannot be replayed
                auth=(credentials.client_id, credentials.client_secret),
                data={"grant_type": "refresh_token", "scope": SCOPE, "refresh_token": refresh_token},
                headers={"Accept": "application/json"},
            )
        except TransportFailure as exc:
            raise VmsTransient(f"EEN token endpoint unreachable: {exc.detail}", vendor=VENDOR) from None
        status = response.status_code
        error = oauth_error(response)
        if status == 200:
            try:
                return TokenResponse.model_validate(response.json())
            except (ValueError, ValidationError):
                raise VmsTransient("EEN token endpoint returned an unreadable response", vendor=VENDOR) from None
        if error == "invalid_client":
            raise VmsAuthError(
                "EEN refused the client credentials (invalid_client): check EEN_CLIENT_ID and EEN_CLIENT_SECRET",
                vendor=VENDOR,
                status=status,
            )
        if status in (400, 401) and error in ("invalid_grant", "", "unauthorized_client"):
            raise _InvalidGrant
        if status == 429:
            raise VmsRateLimited("EEN token endpoint rate limited the agent", vendor=VENDOR, status=status)
        if status >= 500:
            raise VmsTransient(f"EEN token endpoint answered HTTP {status}", vendor=VENDOR, status=status)
        raise VmsAuthError(f"EEN token endpoint answered HTTP {status} {error}", vendor=VENDOR, status=status)
