"""EEN OAuth2: client credentials, one rotating refresh-token grant, bearer access tokens.

Every refresh returns a new refresh token and invalidates the one used at once (and, as EEN
documents, the access token issued with it). Access tokens expire on the simulator clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
from typing import Any

import jwt

from devstack.registry_sim.auth import OAuthError
from devstack.registry_sim.clock import SimClock

from .config import VmsConfig
from .timeutil import to_ms

SCOPE = "vms.all"
STATUS_BY_ERROR = {"invalid_client": 401, "invalid_grant": 401}


def oauth_status(error: OAuthError) -> int:
    return STATUS_BY_ERROR.get(error.error, 400)


class EenAuth:
    def __init__(self, clock: SimClock, config: VmsConfig, seed: str) -> None:
        self._clock = clock
        self._config = config
        self._lock = threading.Lock()
        self.client_id = secrets.token_hex(16)
        self.client_secret = secrets.token_urlsafe(32)
        self.user_id = "ca" + hashlib.sha256(f"{seed}|user".encode()).hexdigest()[:6]
        self.initial_refresh_token = secrets.token_urlsafe(48)  # the customer's one-time consent
        self._signing_key = secrets.token_bytes(32)
        self._refresh_token: str | None = self.initial_refresh_token
        self._access: dict[str, int] = {}  # access token -> expiry (sim clock, epoch ms)
        self._refreshes = 0
        self._issued: list[str] = [self.initial_refresh_token]  # every token ever handed out (never reset)

    def issued(self) -> list[str]:
        """Every refresh and access token this simulator issued (for tests that look for them at rest)."""
        with self._lock:
            return list(self._issued)

    # the token endpoint ---------------------------------------------------------------------

    def check_client(self, authorization: str | None) -> None:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise OAuthError("invalid_client", "client authentication with HTTP Basic is required")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed HTTP Basic credentials") from None
        if not (
            secrets.compare_digest(client_id, self.client_id) and secrets.compare_digest(secret, self.client_secret)
        ):
            raise OAuthError("invalid_client", "client authentication failed")

    def refresh(self, form: dict[str, str]) -> dict[str, Any]:
        """Validates a refresh_token grant and returns the new tokens (the body minus httpsBaseUrl)."""
        if form.get("grant_type") != "refresh_token":
            raise OAuthError("unsupported_grant_type", "grant_type must be refresh_token")
        if form.get("scope", SCOPE) != SCOPE:
            raise OAuthError("invalid_scope", f"scope must be {SCOPE}")
        given = form.get("refresh_token", "")
        if not given:
            raise OAuthError("invalid_request", "refresh_token is missing")
        lifetime = self._config.token_lifetime_seconds
        now = to_ms(self._clock.now())
        with self._lock:
            current = self._refresh_token
            if current is None or not secrets.compare_digest(given, current):
                raise OAuthError("invalid_grant", "the refresh token is invalid, expired, revoked or already used")
            access = jwt.encode(
                {"sub": self.user_id, "aud": SCOPE, "iat": now // 1000, "exp": now // 1000 + lifetime,
                 "jti": secrets.token_hex(8)},
                self._signing_key, algorithm="HS256", headers={"kid": "vms-sim"},
            )  # fmt: skip
            if self._config.revoke_previous_access_token:
                self._access.clear()
            self._access[access] = now + lifetime * 1000
            self._refresh_token = secrets.token_urlsafe(48)
            self._refreshes += 1
            self._issued += [access, self._refresh_token]
            return {
                "access_token": access,
                "expires_in": lifetime,
                "refresh_token": self._refresh_token,
                "scope": SCOPE,
                "token_type": "Bearer",
            }

    # bearer checks and control --------------------------------------------------------------

    def is_valid(self, access_token: str) -> bool:
        now = to_ms(self._clock.now())
        with self._lock:
            expiry = self._access.get(access_token)
            return expiry is not None and now < expiry

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def revoke(self) -> None:
        with self._lock:
            self._access.clear()
            self._refresh_token = None

    def new_grant(self) -> str:
        with self._lock:
            self._access.clear()
            self._refresh_token = secrets.token_urlsafe(48)
            self._issued.append(self._refresh_token)
            return self._refresh_token

    def reset(self) -> None:
        """The state right after the customer's consent: only the initial refresh token is valid."""
        with self._lock:
            self._access.clear()
            self._refresh_token = self.initial_refresh_token
            self._refreshes = 0

    def to_json(self) -> dict[str, Any]:
        now = to_ms(self._clock.now())
        with self._lock:
            return {
                "GrantActive": self._refresh_token is not None,
                "ActiveAccessTokens": sum(expiry > now for expiry in self._access.values()),
                "Refreshes": self._refreshes,
            }
