"""Pooled `requests` sessions: one per outbound service, shared by every thread of a worker."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "clearance-cloud-agent/0.1 (+azure-functions; python)"


def pooled_session(pool_size: int = 16) -> requests.Session:
    """A Session whose connection pool fits `pool_size` concurrent threads; retries are ours, not urllib3's."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session
