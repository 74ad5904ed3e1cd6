"""Pooled `requests` sessions: one per outbound service, shared by every thread of a worker.

`requests` reads the environment on every request when `trust_env` is on: it scans the environment for
proxies and looks for a `~/.netrc` on disk, each time. Measured on the thumbnail benchmark that was about
a sixth of the host's CPU. So the environment is read once, here: a session trusts it per request only
when it names a proxy (NO_PROXY needs the per-request lookup); a CA bundle it names is set on the session
once (`verify`), as `requests` would have used it. netrc credentials are never used by this agent.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from shared.config import ca_bundle, proxies_configured

USER_AGENT = "clearance-cloud-agent/0.1 (+azure-functions; python)"


def pooled_session(pool_size: int = 16) -> requests.Session:
    """A Session whose connection pool fits `pool_size` concurrent threads; retries are ours, not urllib3's."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
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
