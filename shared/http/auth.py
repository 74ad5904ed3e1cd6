"""How an outbound request is authenticated: what is attached, and what a refusal means.

An `Auth` attaches a credential to a request and, when the service refuses it (a status in
`renew_on`), forgets it so that the next attach gets a fresh one: the sender (sender.py) then tries
exactly once more. The credential sources — the Registry's token cache, EEN's rotating OAuth grant,
Verkada's shared tokens — only need `token()` and `invalidate(rejected)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class TokenSource(Protocol):
    """A cache of short-lived tokens shared by the threads of a worker (and possibly by instances)."""

    def token(self) -> str:
        """A token that is valid now, fetched or minted when needed."""
        ...

    def invalidate(self, rejected: str) -> None:
        """The service refused `rejected`: nobody may use it again (unless it was replaced already)."""
        ...


@dataclass
class OutgoingRequest:
    """What an Auth may change before a request leaves."""

    url: str
    headers: dict[str, str]


class Auth(Protocol):
    @property
    def renew_on(self) -> frozenset[int]:
        """Statuses that mean "this credential was refused": it is renewed, and the request sent once more."""
        ...

    def attach(self, request: OutgoingRequest) -> str | None:
        """Attach the credential; returns the credential used (handed back to `refused`)."""
        ...

    def refused(self, credential: str | None) -> None:
        """The service refused `credential`: forget it so the next attach gets a fresh one."""
        ...


@dataclass(frozen=True)
class StaticHeaders:
    """Fixed headers (an API key): nothing to renew, a refusal is final."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    renew_on: frozenset[int] = frozenset()

    def attach(self, request: OutgoingRequest) -> str | None:
        request.headers.update(self.headers)
        return None

    def refused(self, credential: str | None) -> None:
        """Nothing to renew."""


NO_AUTH = StaticHeaders()


@dataclass(frozen=True)
class TokenHeader:
    """A token in a header: `Authorization: Bearer <token>` by default, or a vendor's own header."""

    tokens: TokenSource = field(repr=False)
    header: str = "Authorization"
    scheme: str = "Bearer"
    renew_on: frozenset[int] = frozenset({401})

    def attach(self, request: OutgoingRequest) -> str | None:
        token = self.tokens.token()
        request.headers[self.header] = f"{self.scheme} {token}" if self.scheme else token
        return token

    def refused(self, credential: str | None) -> None:
        if credential is not None:
            self.tokens.invalidate(credential)


@dataclass(frozen=True)
class TokenQuery:
    """A token in a query parameter (Verkada's streaming `jwt`), replacing any value already there."""

    tokens: TokenSource = field(repr=False)
    parameter: str
    renew_on: frozenset[int] = frozenset({401})

    def attach(self, request: OutgoingRequest) -> str | None:
        token = self.tokens.token()
        parts = urlsplit(request.url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query[self.parameter] = token
        request.url = urlunsplit(parts._replace(query=urlencode(query)))
        return token

    def refused(self, credential: str | None) -> None:
        if credential is not None:
            self.tokens.invalidate(credential)
