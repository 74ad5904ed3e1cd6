"""The LocalStack runs both VMS profiles, records their URLs in state.json and their secrets in a 0600 file."""

from __future__ import annotations

import json
import stat

import pytest
import requests

from devstack import LocalStack
from devstack.vms_sim import EenSimulator, RhombusSimulator

pytest_plugins = ["tests.devstack.vms_conftest"]
pytestmark = pytest.mark.integration  # these start Azurite and the simulators themselves


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_stack_exposes_both_profiles_on_their_own_ports(stack):
    een, rhombus = stack.een, stack.rhombus
    ports = {port(u) for u in (een.api_url, een.account_url, rhombus.api_url, rhombus.media_url, stack.registry_url)}

    assert len(ports) == 5
    assert een.auth_url == een.api_url
    assert een.control.info()["AccountUrl"] == een.account_url
    assert rhombus.control.info()["MediaUrl"] == rhombus.media_url
    assert een.client_secret not in repr(een) and rhombus.api_key not in repr(rhombus)


def test_state_names_the_vms_urls_and_keeps_the_secrets_in_a_private_file(tmp_path):
    with LocalStack(tmp_path) as stack:
        state_text = (tmp_path / "state.json").read_text()
        credentials_file = tmp_path / "vms-credentials.json"
        credentials = json.loads(credentials_file.read_text())
        urls = [stack.een.api_url, stack.een.account_url, stack.rhombus.api_url, stack.rhombus.media_url]
        secrets = [stack.een.client_secret, stack.een.initial_refresh_token, stack.rhombus.api_key]
        state = json.loads(state_text)

        assert state["een"]["account_url"] == stack.een.account_url
        assert state["een"]["token_url"] == stack.een.auth_url + "/oauth2/token"
        assert state["rhombus"]["media_url"] == stack.rhombus.media_url
        assert state["vms_credentials"] == str(credentials_file)
        assert not any(secret in state_text for secret in secrets)
        assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
        assert credentials["een"]["client_secret"] == stack.een.client_secret
        assert credentials["een"]["initial_refresh_token"] == stack.een.initial_refresh_token
        assert credentials["rhombus"]["api_key"] == stack.rhombus.api_key

    for url in urls:
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/_sim/info", timeout=2)


@pytest.mark.parametrize("profile", [EenSimulator, RhombusSimulator])
def test_a_profile_runs_on_its_own_and_stops_cleanly(profile):
    with profile(camera_count=3) as simulator:
        url = simulator.control_url
        assert len(simulator.control.cameras()) == 3

    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_sim/info", timeout=2)
