"""What may be written down about a request: harmless query values only, never tokens or signatures."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

LOGGED_QUERY_PARAMETERS = frozenset(
    {
        "deviceid", "type", "mediatype", "include", "pagesize", "coalesce", "starttimestamp__gte",
        "endtimestamp__lte", "starttimestamp", "endtimestamp", "timestamp", "timestamp__lt", "timestamp__lte",
        "timestamp__gt", "timestamp__gte",
    }
)  # fmt: skip


def redact_query(query: str) -> str:
    """Keeps the values of allow-listed parameters (never signatures, expiries, tokens or page cursors)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, v if k.lower() in LOGGED_QUERY_PARAMETERS else "REDACTED") for k, v in pairs])


def redact_target(target: str) -> str:
    """A request target (path?query) with its query redacted."""
    path, _, query = target.partition("?")
    return f"{path}?{redact_query(query)}" if query else path
