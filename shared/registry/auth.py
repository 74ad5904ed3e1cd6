"""Access tokens for the Registry: RFC 7523 JWT-bearer assertions signed with the service principal key.

One TokenProvider is shared by every thread of a worker. A token is renewed after half its lifetime
(so a long call never starts with an almost-expired token) and on demand after a 401.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pydantic import ValidationError

from shared.http.oauth import oauth_error
from shared.http.retry import RetryingSender, TransportFailure
from shared.registry import contract
from shared.registry.connection_file import ConnectionFile
from shared.registry.errors import (
    RegistryProtocolError,
    RegistryRateLimited,
    RegistryTransient,
    RegistryUnauthorized,
)

log = logging.getLogger(__name__)


def _b64url_json(value: dict[str, object]) -> bytes:
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def build_assertion(connection: ConnectionFile, *, now: float | None = None) -> str:
    """A signed JWT (RS512) proving possession of the service principal key, valid for 5 minutes."""
    issued = int(now if now is not None else time.time())
    header: dict[str, object] = {"alg": contract.ASSERTION_ALGORITHM, "typ": "JWT", "kid": connection.key_id}
    claims: dict[str, object] = {
        "iss": connection.client_id,
        "sub": connection.client_id,
        "aud": connection.token_endpoint,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + contract.ASSERTION_LIFETIME_SECONDS,
    }
    signing_input = _b64url_json(header) + b"." + _b64url_json(claims)
    signature = connection.signing_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA512())
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode("ascii")


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float
    expires_at: float


class TokenProvider:
    """Thread-safe cache of the Registry access token."""

    def __init__(
        self,
        connection: ConnectionFile,
        sender: RetryingSender,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connection
        self._sender = sender
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def token(self) -> str:
        """A valid access token, fetched when none is cached or the cached one is past half its life."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.renew_at:
                token = self._token = self._fetch()
            return token.value

    def invalidate(self, rejected: str) -> None:
        """Forget `rejected` after a 401, unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None

    def _fetch(self) -> _Token:
        connection = self._connection
        form = contract.token_request_form(connection.client_id, build_assertion(connection, now=self._clock()))
        requested = self._clock()
        try:
            response = self._sender.send(
                "POST", connection.token_endpoint, operation="token", data=form, headers={"Accept": "application/json"}
            )
        except TransportFailure as exc:
            raise RegistryTransient(f"Clearance STS unreachable: {exc.detail}", operation="token") from None
        status = response.status_code
        if status == 429:
            raise RegistryRateLimited("Clearance STS rate limited the agent", operation="token", status=status)
        if status >= 500:
            raise RegistryTransient(f"Clearance STS answered HTTP {status}", operation="token", status=status)
        if status != 200:
            raise RegistryUnauthorized(
                f"Clearance STS refused the agent's credentials (HTTP {status} {oauth_error(response)}): "
                "check the connection file (the integration may have been deleted or its key rotated) "
                "and the machine clock",
                operation="token",
                status=status,
            )
        try:
            parsed = contract.TokenResponse.model_validate(response.json())
        except (ValueError, ValidationError):
            raise RegistryProtocolError(
                "Clearance STS returned an unreadable token response", operation="token"
            ) from None
        lifetime = parsed.expires_in
        log.info("Obtained a Registry access token valid for %d s", lifetime)
        return _Token(parsed.access_token, requested + lifetime / 2, requested + lifetime)
