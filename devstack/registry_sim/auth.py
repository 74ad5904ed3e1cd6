"""The security token service: RFC 7523 JWT-bearer assertions in, opaque bearer tokens out.

Assertions are checked against REAL time (the agent signs with its own clock); issued access tokens
expire on the simulator clock, so advancing the clock expires them.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import jwt

from .clock import SimClock
from .config import SimConfig
from .identity import SimulatorIdentity

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALGORITHMS = ["RS512", "RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "jti", "iss", "sub", "aud"]
LEEWAY_SECONDS = 30
MAX_ASSERTION_LIFETIME_SECONDS = 300


class OAuthError(Exception):
    """An OAuth2 token-endpoint error (RFC 6749 §5.2); the description never contains the assertion."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class TokenService:
    def __init__(self, identity: SimulatorIdentity, clock: SimClock, config: SimConfig) -> None:
        self._identity = identity
        self._clock = clock
        self._config = config
        self._lock = threading.Lock()
        self._tokens: dict[str, datetime] = {}  # access token -> expiry (simulator clock)
        self._used_jti: dict[str, float] = {}  # jti -> assertion exp (real time, epoch seconds)

    def issue(self, form: dict[str, str], audience: str) -> dict[str, Any]:
        """Validates a token request (form fields) and returns the OAuth2 success body."""
        if form.get("grant_type") != JWT_BEARER_GRANT:
            raise OAuthError("unsupported_grant_type", f"grant_type must be {JWT_BEARER_GRANT}")
        if form.get("client_id") != self._identity.client_id:
            raise OAuthError("invalid_client", "unknown client_id (expected <ServicePrincipalId>@<TenantId>)")
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError("invalid_grant", "assertion is missing")
        claims = self._verify_assertion(assertion, audience)
        lifetime = self._config.token_lifetime_seconds
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._purge()
            if claims["jti"] in self._used_jti:
                raise OAuthError("invalid_grant", "assertion jti was already used")
            self._used_jti[claims["jti"]] = float(claims["exp"])
            self._tokens[token] = self._clock.now() + timedelta(seconds=lifetime)
        return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}

    def _verify_assertion(self, assertion: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise OAuthError("invalid_grant", f"assertion is not a JWT: {error}") from None
        if header.get("kid") != self._identity.principal.kid:
            raise OAuthError("invalid_grant", "assertion header kid does not match the ServicePrincipalKey kid")
        client_id = self._identity.client_id
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                self._identity.principal.public_key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=client_id,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", f"assertion aud must be the token endpoint {audience}") from None
        except jwt.InvalidIssuerError:
            raise OAuthError("invalid_grant", "assertion iss must be the client_id") from None
        except jwt.PyJWTError as error:
            raise OAuthError("invalid_grant", f"assertion rejected: {error}") from None
        if claims["sub"] != client_id:
            raise OAuthError("invalid_grant", "assertion sub must be the client_id")
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise OAuthError("invalid_grant", "assertion jti must be a non-empty string")
        if claims["exp"] - claims["iat"] > MAX_ASSERTION_LIFETIME_SECONDS:
            raise OAuthError(
                "invalid_grant", f"assertion exp must be at most {MAX_ASSERTION_LIFETIME_SECONDS} s after iat"
            )
        return claims

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
            return expiry is not None and self._clock.now() < expiry

    def _purge(self) -> None:
        now_real, now_sim = time.time(), self._clock.now()
        self._used_jti = {jti: exp for jti, exp in self._used_jti.items() if exp + LEEWAY_SECONDS > now_real}
        self._tokens = {token: exp for token, exp in self._tokens.items() if exp > now_sim}

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._used_jti.clear()
