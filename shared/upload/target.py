"""Where we agree to upload: an `https` Azure Blob URL with a SAS, on an allowed host.

A compromised or misconfigured Registry must not be able to make the agent send customer video to an
arbitrary host, so the upload URI is checked against an allow-list before any byte leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from shared.redact import redact_url
from shared.upload.errors import UploadTargetRefused

AZURE_BLOB_HOST_PATTERNS: tuple[str, ...] = (
    "*.blob.core.windows.net",
    "*.blob.core.usgovcloudapi.net",
    "*.blob.core.chinacloudapi.cn",
    "*.blob.storage.azure.net",  # DNS-zone (partitioned) storage endpoints
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def host_matches(host: str, pattern: str) -> bool:
    """`*.example.net` matches any subdomain of example.net; anything else matches exactly."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


@dataclass(frozen=True)
class UploadTargetPolicy:
    allowed_hosts: tuple[str, ...] = AZURE_BLOB_HOST_PATTERNS
    allow_http_loopback: bool = False
    """Only for the local stack (Azurite over plain http on 127.0.0.1)."""

    def check(self, uri: str) -> None:
        """Raise UploadTargetRefused unless `uri` is a SAS URL we may upload to."""
        try:
            parts = urlsplit(uri)
            host = parts.hostname or ""
        except ValueError:
            raise UploadTargetRefused("the upload URI is not a valid URL") from None
        shown = redact_url(uri)
        if parts.username or parts.password:
            raise UploadTargetRefused(f"the upload URI carries user credentials: {shown}")
        if "sig" not in parse_qs(parts.query):
            raise UploadTargetRefused(f"the upload URI has no SAS signature: {shown}")
        if self.allow_http_loopback and host in LOOPBACK_HOSTS and parts.scheme in ("http", "https"):
            return
        if parts.scheme != "https":
            raise UploadTargetRefused(
                f"the upload URI must use https: {shown} (plain http is accepted only for a local storage "
                "emulator on loopback, with UPLOAD_ALLOW_HTTP_LOOPBACK=true)"
            )
        if not any(host_matches(host, pattern) for pattern in self.allowed_hosts):
            raise UploadTargetRefused(
                f"the upload host {host!r} is not in UPLOAD_ALLOWED_HOSTS ({', '.join(self.allowed_hosts)}): {shown}"
            )
