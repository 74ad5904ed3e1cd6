"""The stand-ins keep the real clients' signatures, so an engine change that calls them differently fails here
rather than passing against a fake that no longer looks like the real thing."""

from __future__ import annotations

import inspect

import pytest
from azure.data.tables import TableClient

from shared.registry.client import RegistryClient
from shared.upload.uploader import EncryptedBlobUploader
from shared.vms.base import VmsAdapter
from tests.fakes.agent import FakeRegistry, FakeUploader, FakeVms
from tests.fakes.tables import FakeTableClient


def parameters(function: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fake", "real", "names"),
    [
        (FakeRegistry, RegistryClient, ["list_jobs", "lock", "renew", "report_progress", "complete", "cancel",
                                        "release", "initialize_upload", "complete_media", "complete_discovery",
                                        "complete_thumbnail"]),
        (FakeVms, VmsAdapter, ["list_cameras", "get_snapshot", "find_recordings", "start_clip", "poll_clip",
                               "open_download", "cleanup", "remove_tagged"]),
        (FakeUploader, EncryptedBlobUploader, ["upload"]),
    ],
)  # fmt: skip
def test_a_stand_in_has_the_real_signatures(fake, real, names):
    for name in names:
        assert parameters(getattr(fake, name)) == parameters(getattr(real, name)), name


@pytest.mark.parametrize("name", ["get_entity", "create_entity", "update_entity", "upsert_entity", "query_entities"])
def test_the_fake_table_takes_the_sdks_arguments(name):
    """The named parameters of the SDK's methods, by name and kind (the fake may take more as **kwargs)."""
    fake = dict(parameters(getattr(FakeTableClient, name)))
    for parameter, kind in parameters(getattr(TableClient, name)):
        if kind is not inspect.Parameter.VAR_KEYWORD:
            assert fake.get(parameter) == kind, f"{name}({parameter})"
