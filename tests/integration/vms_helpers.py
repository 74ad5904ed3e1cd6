"""Helpers for adapter tests: build adapters on the local stack, drive exports, download and hash."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableServiceClient

from devstack.footage import FootageReader
from shared.http.retry import RetryPolicy
from shared.secrets.keyring import LocalKeyFileWrapper, credentials_sealer
from shared.vms.base import ClipStatus, Download, VmsAdapter
from shared.vms.settings import VmsSettings, build_adapter

JPEG_MAGIC = b"\xff\xd8\xff"
FAST_RETRIES = RetryPolicy(max_attempts=4, backoff_initial=0.05, backoff_max=0.2, deadline=15)


def new_tag() -> str:
    """A fresh artefact tag, as the engine gives start_clip (unique per test, so no test finds another's)."""
    return f"clr-{uuid.uuid4().hex[:10]}"


def stack_sealer(stack, table):
    """The sealer the agent uses for `table` on this stack (data keys wrapped by the local-only key file)."""
    return credentials_sealer(table, LocalKeyFileWrapper(stack.credentials_key_file))


def fresh_token_table(stack):
    """A table of its own per test, so no stored grant leaks from one test into another."""
    service = TableServiceClient.from_connection_string(stack.storage_connection_string)
    return service.get_table_client(f"vmstokens{uuid.uuid4().hex[:12]}")


def een_settings(stack, **overrides) -> VmsSettings:
    een = stack.een
    fields = {
        "kind": "een",
        "een_client_id": een.client_id,
        "een_client_secret": een.client_secret,
        "een_refresh_token": een.initial_refresh_token,
        "een_auth_url": een.auth_url,
        "een_api_url": een.api_url,
        "credentials_key_file": stack.credentials_key_file,
    }
    return VmsSettings(**{**fields, **overrides})


def een_adapter(stack, table=None, retry: RetryPolicy = FAST_RETRIES, **overrides) -> VmsAdapter:
    return build_adapter(een_settings(stack, **overrides), token_table=table or fresh_token_table(stack), retry=retry)


def rhombus_adapter(stack, retry: RetryPolicy = FAST_RETRIES, **overrides) -> VmsAdapter:
    rhombus = stack.rhombus
    settings = VmsSettings(
        kind="rhombus",
        rhombus_api_key=overrides.pop("api_key", rhombus.api_key),
        rhombus_api_url=rhombus.api_url,
        rhombus_media_url=rhombus.media_url,
    )
    return build_adapter(settings, retry=retry)


def wait_for_clip(adapter: VmsAdapter, ticket: dict, control, *, step: float = 10, limit: int = 100) -> ClipStatus:
    """Poll, advancing the simulator's clock between polls instead of sleeping."""
    for _ in range(limit):
        status = adapter.poll_clip(ticket)
        if status.state in ("ready", "failed"):
            return status
        control.advance_clock(step)
    raise AssertionError("the clip never finished")


def fetch(adapter: VmsAdapter, download: Download) -> tuple[int, str, int]:
    """(size, sha256, largest chunk) of a download, streamed."""
    digest, size, largest = hashlib.sha256(), 0, 0
    with adapter.open_download(download) as stream:
        for chunk in stream:
            digest.update(chunk)
            size += len(chunk)
            largest = max(largest, len(chunk))
    return size, digest.hexdigest(), largest


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def not_exactly(adapter: VmsAdapter, download: Download, camera_id: str) -> str:
    """Why the download is not exactly camera_id's footage of [download.start, download.end) ("" when it is),
    read as it streams."""
    reader = FootageReader()
    with adapter.open_download(download) as stream:
        for chunk in stream:
            reader.feed(chunk)
    return reader.result().describes(camera_id, ms(download.start), ms(download.end))


def spans(intervals) -> list[tuple[datetime, datetime]]:
    """(start, end) pairs of Intervals or Downloads, sorted."""
    return sorted((i.start, i.end) for i in intervals)


def recent_window(hours_ago: float, minutes: float) -> tuple[datetime, datetime]:
    start = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(second=0, microsecond=0)
    return start, start + timedelta(minutes=minutes)


def count(control, operation: str, status: int | None = None) -> int:
    """Requests of one operation (optionally with one status) in a VMS simulator's request log."""
    return sum(
        1 for r in control.requests() if r["Operation"] == operation and (status is None or r["Status"] == status)
    )


def verkada_adapter(stack, table=None, retry: RetryPolicy = FAST_RETRIES, **overrides) -> VmsAdapter:
    """A Verkada adapter built from settings, as the agent builds it (tokens shared through `table`)."""
    verkada = stack.verkada
    settings = VmsSettings(
        kind="verkada",
        verkada_api_key=overrides.pop("api_key", verkada.api_key),
        verkada_org_id=overrides.pop("org_id", verkada.org_id),
        verkada_api_url=verkada.api_url,
        credentials_key_file=stack.credentials_key_file,
    )
    return build_adapter(settings, token_table=table or fresh_token_table(stack), retry=retry)
