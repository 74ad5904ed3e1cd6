"""OAuth 2.0 token endpoint answers (RFC 6749 §5.2), read the same way for the Clearance STS and EEN."""

from __future__ import annotations

import requests


def oauth_error(response: requests.Response) -> str:
    """The error code of a refused token request (`invalid_grant`, `invalid_client`…), at most 64
    characters; "" when the body has none. `error_description` is left out: it may echo what was sent."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:64] if error else ""
