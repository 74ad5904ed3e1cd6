"""Signed, expiring media URLs: an HMAC over path and query, with an expiry on the simulator clock.

"Expire all media URLs now" rotates the key, which invalidates every URL handed out so far.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from enum import Enum
from urllib.parse import urlencode

from devstack.registry_sim.clock import SimClock

from .timeutil import to_ms

EXPIRES = "expires"
SIGNATURE = "signature"


class Verdict(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class UrlSigner:
    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)

    def _mac(self, key: bytes, path: str, params: Mapping[str, str]) -> str:
        canonical = path + "?" + urlencode(sorted((k, v) for k, v in params.items() if k != SIGNATURE))
        digest = hmac.new(key, canonical.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, path: str, params: Mapping[str, str], ttl_seconds: int) -> str:
        """The query string (with expiry and signature) for `path`."""
        signed = {**params, EXPIRES: str(to_ms(self._clock.now()) // 1000 + ttl_seconds)}
        with self._lock:
            key = self._key
        return urlencode({**signed, SIGNATURE: self._mac(key, path, signed)})

    def verify(self, path: str, params: Mapping[str, str]) -> Verdict:
        with self._lock:
            key = self._key
        given = params.get(SIGNATURE, "")
        if not given or not hmac.compare_digest(given, self._mac(key, path, params)):
            return Verdict.INVALID
        expires = params.get(EXPIRES, "")
        if not expires.isdigit() or int(expires) * 1000 <= to_ms(self._clock.now()):
            return Verdict.EXPIRED
        return Verdict.VALID

    def expire_all(self) -> None:
        with self._lock:
            self._key = secrets.token_bytes(32)
