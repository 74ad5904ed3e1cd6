"""Job dimensions follow the work across threads; the distro is set up with the app's identity and no sampling."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.agent.work.messages import ItemMessage, decode_message, encode_item
from shared.telemetry import bind, carry_context, current_dimensions, job_context
from shared.telemetry import setup as telemetry_setup


def test_dimensions_nest_and_end_with_their_block():
    with job_context(job_id="j1", job_type="thumbnail"):
        with job_context(item_id="i1", generation="g1"):
            bind(job_type="mediarequest")
            expected = {"job_id": "j1", "item_id": "i1", "generation": "g1", "job_type": "mediarequest"}
            assert current_dimensions().items() >= expected.items()
        assert "item_id" not in current_dimensions() and current_dimensions()["job_type"] == "thumbnail"
    assert "job_id" not in current_dimensions()
    with pytest.raises(ValueError, match="not a job dimension"):
        bind(lock_token="x")


def test_a_thread_sees_the_dimensions_only_when_started_with_carry_context():
    seen: dict[str, dict[str, str]] = {}

    def look(name: str) -> None:
        seen[name] = current_dimensions()

    with job_context(job_id="j2", item_id="i2"):
        plain = threading.Thread(target=look, args=("plain",))
        carried = threading.Thread(target=carry_context(look), args=("carried",))
        for thread in (plain, carried):
            thread.start()
            thread.join()
        with ThreadPoolExecutor(max_workers=3) as pool:  # one wrapper, several threads at once
            pooled = list(pool.map(carry_context(lambda n: current_dimensions()["job_id"] + str(n)), range(6)))
    assert "job_id" not in seen["plain"]
    assert seen["carried"]["job_id"] == "j2" and seen["carried"]["item_id"] == "i2"
    assert pooled == [f"j2{n}" for n in range(6)]


def test_an_item_message_without_a_traceparent_is_as_valid_as_before():
    message = decode_message(b'{"JobId":"j","Generation":"g","ItemId":"i"}')
    assert isinstance(message, ItemMessage) and message.traceparent == ""
    assert b"Traceparent" not in encode_item("j", "g", "i")  # nothing traced: nothing added


def test_azure_monitor_is_configured_with_the_managed_identity_and_without_sampling(monkeypatch):
    import azure.monitor.opentelemetry

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(azure.monitor.opentelemetry, "configure_azure_monitor", lambda **kw: calls.append(kw))
    monkeypatch.setattr(telemetry_setup, "_mode", None)
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD",
    }
    assert telemetry_setup.configure_telemetry(env) == "azuremonitor"
    assert telemetry_setup.configure_telemetry(env) == "azuremonitor"  # once per process
    (options,) = calls
    credential = options["credential"]
    assert type(credential).__name__ == "ManagedIdentityCredential"
    assert options["sampling_ratio"] == 1.0 and options["enable_trace_based_sampling_for_logs"] is False
    for library in ("requests", "urllib3", "azure_sdk"):
        assert options["instrumentation_options"][library] == {"enabled": False}
    assert options["logger_name"] == ""


def test_the_authentication_string_names_the_identity():
    assert telemetry_setup._aad_client_id("ClientId=abc;Authorization=AAD") == "abc"
    assert telemetry_setup._aad_client_id("Authorization=AAD") == ""
    assert telemetry_setup._aad_client_id("") is None
