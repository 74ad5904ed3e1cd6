"""`make agent`: one agent per Clearance identity — against a real Registry it says why, and starts only
when told to; against the local simulator it just starts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import real_agent
from shared.crypto.jwk import private_jwk
from shared.settings import AgentSettings

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_D = private_jwk(KEY, "k")["d"][:20]
# Storage that is not the local Azurite (nothing is reached: the agent stops before the host starts).
REMOTE_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/acct;"
    "QueueEndpoint=http://127.0.0.1:9/acct;BlobEndpoint=http://127.0.0.1:9/acct"
)


def values(registry: str) -> dict[str, str]:
    connection = {
        "TenantId": "tenant",
        "ServicePrincipalId": "sp-7",
        "ServicePrincipalKey": private_jwk(KEY, "k"),
        "SecurityTokenServiceBaseAddresses": [f"{registry}/sts"],
        "ApiBaseAddresses": [f"{registry}/api"],
    }
    return {
        "AzureWebJobsStorage": REMOTE_STORAGE,
        "CLEARANCE_CONNECTION_FILE": json.dumps(connection),
        "VMS_KIND": "rhombus",
        "RHOMBUS_API_KEY": "rhombus-key",
    }


def test_the_local_simulator_needs_no_flag():
    settings = AgentSettings.from_env(values("http://127.0.0.1:5050"))
    assert real_agent.shared_identity_warning(settings) is None


def test_a_real_registry_is_named_with_the_identity_and_the_way_to_go_on():
    settings = AgentSettings.from_env(values("https://clearance.example.com"))
    warning = real_agent.shared_identity_warning(settings)
    assert warning is not None
    assert "clearance.example.com" in warning and "sp-7" in warning and "same jobs" in warning
    assert real_agent.SHARED_IDENTITY_FLAG in warning


def test_make_agent_refuses_a_real_registry_without_the_flag(tmp_path: Path, capsys):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values("https://clearance.example.com")}))
    args = argparse.Namespace(settings=path, log_level="INFO", verbose=False, allow_shared_identity=False)
    assert real_agent.run(args) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: This connection file is for a real Clearance Registry (clearance.example.com)")
    assert "--allow-shared-identity" in out and "PRIVATE" not in out and KEY_D not in out
