"""Keep secrets out of logs and exception messages.

SAS URLs are the main risk: their `sig` is a bearer credential. We keep the query parameters that help
an operator (expiry, permissions, version) and redact every other value, as the Azure SDK does.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

REDACTED = "REDACTED"

# SAS parameters that are not secret and tell an operator what the URL allows and until when.
_SAFE_QUERY_PARAMS = frozenset({"sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "timeout", "comp", "restype"})

_SECRET_PATTERNS = (
    re.compile(r"(?i)(\b(?:sig|signature|token|jwt|apikey|api_key|x-auth-apikey)=)[^&\s\"']+"),
    re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)(\b(?:assertion|access_token|refresh_token|client_secret|code)[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+"
    ),
    re.compile(r"(?i)(\bAccountKey=)[^;\s\"']+"),
)


def redact_url(url: str) -> str:
    """Return `url` with every query value that may be a credential replaced by REDACTED."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if not parts.query:
        return urlunsplit(parts._replace(fragment=""))
    query = "&".join(
        f"{name}={value if name.lower() in _SAFE_QUERY_PARAMS else REDACTED}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str) -> str:
    """Redact SAS signatures, bearer tokens, assertions and account keys found anywhere in `text`."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class SecretScrubbingFilter(logging.Filter):
    """Defence in depth: scrub secrets from every record, including third-party libraries' messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Third-party loggers that write request URLs (urllib3 logs every request line, SAS query included, at
# DEBUG). A filter on a logger applies to the records it creates, whichever handler ends up writing them.
URL_LOGGING_LIBRARIES = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "azure.core.pipeline.policies.http_logging_policy",
)

_FILTER = SecretScrubbingFilter()


def install_log_scrubbing(*handlers: logging.Handler) -> None:
    """Scrub secrets from the URL-logging libraries' records and from everything `handlers` write."""
    for name in URL_LOGGING_LIBRARIES:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
