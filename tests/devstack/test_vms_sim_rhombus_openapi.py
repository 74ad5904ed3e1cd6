"""The Rhombus adapter and the Rhombus simulator both speak Rhombus's own OpenAPI document.

Every request body the adapter sends and every JSON body the simulator answers (errors included) is
validated against the part of Rhombus's OpenAPI document that covers the endpoints we use
(devstack/vms_sim/specs/rhombus-openapi-subset.json, MIT licence), and must declare nothing the
schema does not. The exchanges are captured on the adapter's own HTTP session while it does its work.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from shared.vms.errors import NoFootage, VmsAuthError, VmsVendorError
from tests.devstack.openapi_schemas import assert_valid
from tests.integration.vms_helpers import new_tag, not_exactly, rhombus_adapter, wait_for_clip

pytest_plugins = ["tests.devstack.vms_conftest"]

SPEC_FILE = Path(__file__).resolve().parents[2] / "devstack" / "vms_sim" / "specs" / "rhombus-openapi-subset.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    pytest.importorskip("openapi_schema_validator", reason="openapi-schema-validator is needed")
    return json.loads(SPEC_FILE.read_text())


def capturing(adapter, seen: list[requests.Response] | None = None) -> list[requests.Response]:
    """Every API response the adapter receives (with the request that caused it), as it happens."""
    seen = [] if seen is None else seen

    def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if urlsplit(response.url).path.startswith("/api/"):
            seen.append(response)

    adapter._sender.session.hooks["response"].append(keep)
    return seen


def check(spec: dict[str, Any], exchanges: list[requests.Response]) -> set[str]:
    """Validates each exchange; returns the paths seen."""
    paths: set[str] = set()
    for response in exchanges:
        path = urlsplit(str(response.request.url)).path
        operation = spec["paths"][path]["post"]
        paths.add(path)
        request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert_valid(spec, request_schema, json.loads(response.request.body or b""), f"request to {path}", request=True)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            response_schema = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert_valid(spec, response_schema, response.json(), f"response {response.status_code} from {path}")
    return paths


def test_every_request_and_response_of_a_whole_clip_follows_rhombus_openapi(stack, rhombus, rhombus_sim, spec):
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=3)
    local = [[(start + timedelta(minutes=1)).isoformat(), (start + timedelta(minutes=2)).isoformat()]]
    camera_id = rhombus_sim.add_camera(Name="Spec", Recordings=[[start.isoformat(), end.isoformat()]], LocalOnly=local)[
        "Id"
    ]
    rhombus_sim.configure(BitrateKbps=16)
    adapter = rhombus_adapter(stack)
    exchanges = capturing(adapter)

    assert camera_id in {camera.id for camera in adapter.list_cameras()}
    adapter.get_snapshot(camera_id, at=start + timedelta(seconds=5))
    with pytest.raises(NoFootage):
        adapter.get_snapshot(camera_id, at=start - timedelta(hours=1))  # a 200 with error: true
    rhombus_sim.set_online(camera_id, False)
    assert adapter.find_recordings(camera_id, start, end)
    tag = new_tag()
    ticket = adapter.start_clip(camera_id, start, end, tag=tag)
    status = wait_for_clip(adapter, ticket, rhombus_sim)
    assert [not_exactly(adapter, d, camera_id) for d in status.downloads] == ["", ""]
    assert adapter.remove_tagged(tag) == 2  # the saved clips, listed by getClipsWithProgress
    adapter.cleanup(ticket)  # the clips are gone: the answers are errors, checked too
    rhombus_sim.fail_exports()
    failed = adapter.start_clip(camera_id, start, start + timedelta(minutes=1), tag=new_tag())
    assert wait_for_clip(adapter, failed, rhombus_sim).state == "failed"
    adapter.cleanup(failed)

    assert check(spec, exchanges) == set(spec["paths"])


def test_error_answers_follow_rhombus_openapi(stack, rhombus, rhombus_sim, spec):
    adapter = rhombus_adapter(stack, api_key="wrong")
    exchanges = capturing(adapter)
    with pytest.raises(VmsAuthError):
        list(adapter.list_cameras())
    rhombus_sim.inject_fault("get_clip", 200, detail="temporarily unavailable")
    good = rhombus_adapter(stack)
    capturing(good, exchanges)
    span = {"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-01T00:01:00+00:00"}
    with pytest.raises(VmsVendorError, match="temporarily unavailable"):
        good.poll_clip({"clips": [{"clip_uuid": "x", **span}], **span})

    assert check(spec, exchanges) == {"/api/camera/getMinimalCameraStateList", "/api/event/getClipWithProgress"}
    assert {response.status_code for response in exchanges} == {401, 200}
