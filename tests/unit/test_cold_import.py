"""PyAV (FFmpeg's libraries, ~100 MB) is loaded only by a Verkada agent: an EEN or Rhombus agent's cold start
never imports it. Each case runs in a fresh interpreter (`bench.cold_import`), so nothing an earlier test
imported can hide or fake the result; the Verkada case shows the probe does see `av` when it is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.crypto.jwk import private_jwk

ROOT = Path(__file__).resolve().parents[2]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONNECTION_FILE = json.dumps(
    {
        "TenantId": "t",
        "ServicePrincipalId": "sp",
        "ServicePrincipalKey": private_jwk(KEY, "k"),
        "SecurityTokenServiceBaseAddresses": ["https://sts.test/connect"],
        "ApiBaseAddresses": ["https://api.test"],
    }
)


def cold_start(vendor: str) -> dict:
    """The function folders imported and the agent built for `vendor`, in a new interpreter."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EEN_", "RHOMBUS_", "VERKADA_", "VMS_"))}
    environ["CLEARANCE_CONNECTION_FILE"] = CONNECTION_FILE
    result = subprocess.run(
        [sys.executable, "-m", "bench.cold_import", vendor],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bench-secret" not in result.stdout + result.stderr and "PRIVATE" not in result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("vendor", ["een", "rhombus"])
def test_an_een_or_rhombus_agent_never_imports_pyav(vendor):
    probe = cold_start(vendor)
    assert probe["vendor"] == vendor
    assert probe["av_imported"] is False


def test_a_verkada_agent_imports_pyav():
    assert cold_start("verkada")["av_imported"] is True
