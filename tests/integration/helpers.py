"""Small helpers for integration tests."""

from __future__ import annotations

import hashlib
import io
import os
from urllib.parse import unquote, urlsplit


def blob_name_from_sas(uri: str, container: str) -> str:
    path = unquote(urlsplit(uri).path)
    return path.split(f"/{container}/", 1)[1]


def random_file(size: int) -> tuple[io.BytesIO, bytes, str]:
    data = os.urandom(size)
    return io.BytesIO(data), data, hashlib.sha256(data).hexdigest()
