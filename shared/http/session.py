"""Pooled `requests` sessions: one per outbound service, shared by every thread of a worker.

`requests` reads the environment on every request when `trust_env` is on: it scans the environment for
proxies and looks for a `~/.netrc` on disk, each time. Measured on the thumbnail benchmark that was about
a sixth of the host's CPU. So the environment is read once, here: a session trusts it per request only
when it names a proxy (NO_PROXY needs the per-request lookup); a CA bundle it names is set on the session
once (`verify`), as `requests` would have used it. netrc credentials are never used by this agent.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import requests
from requests.adapters import DEFAULT_CA_BUNDLE_PATH, HTTPAdapter

from shared.config import ca_bundle, proxies_configured

USER_AGENT = "clearance-cloud-agent/0.1 (+azure-functions; python)"


@functools.cache
def _ca_location(verify: str) -> tuple[str, str]:
    """("ca_certs" or "ca_cert_dir", path) for a CA bundle file or directory, looked up once per path (a
    missing path is not remembered: a bundle installed later is found then)."""
    if not os.path.exists(verify):
        raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {verify}")
    return ("ca_cert_dir" if os.path.isdir(verify) else "ca_certs"), verify


class PooledAdapter(HTTPAdapter):
    """`requests`' adapter, except that the CA bundle's path is looked up on disk once, not on every request
    (`requests` stats it once or twice per request, a sixth of a thumbnail job's HTTP cost in the profile
    of the benchmark); what it does with the answer is unchanged."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, True if isinstance(verify, str) else verify, cert
        )
        if isinstance(verify, str):
            key, path = _ca_location(verify)
            if key == "ca_certs":
                pool_kwargs["ca_certs"] = path
            else:
                pool_kwargs["ca_cert_dir"] = path
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        if not (url.lower().startswith("https") and verify):
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            return
        key, path = _ca_location(verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH)
        super().cert_verify(conn, url, False, cert)  # type: ignore[no-untyped-call]  # the client certificate, if any
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs, conn.ca_cert_dir = (path, None) if key == "ca_certs" else (None, path)


def pooled_session(pool_size: int = 16) -> requests.Session:
    """A Session whose connection pool fits `pool_size` concurrent threads; retries are ours, not urllib3's."""
    session = requests.Session()
    adapter = PooledAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = proxies_configured()
    session.verify = ca_bundle() or True
    return session


def storage_transport(pool_size: int, **timeouts: Any) -> Any:
    """An azure-core transport on one pooled session, for every Storage client of a worker (tables, queues,
    blobs): one pool of connections, and the environment read once (see the module's docstring)."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(
        session=pooled_session(pool_size),
        session_owner=False,
        use_env_settings=proxies_configured(),
        connection_verify=ca_bundle() or True,
        **timeouts,
    )
