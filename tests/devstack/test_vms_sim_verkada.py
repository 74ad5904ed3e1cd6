"""The Verkada profile refuses what Verkada refuses, in Verkada's error style."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests


@pytest.fixture
def verkada(stack):
    control = stack.verkada.control
    control.reset()
    yield stack.verkada
    control.clear_faults()


def api_token(verkada) -> str:
    return requests.post(verkada.api_url + "/token", headers={"x-api-key": verkada.api_key}, timeout=10).json()["token"]


def test_the_api_key_only_mints_tokens_and_an_expired_token_is_0e2d(verkada):
    assert requests.post(verkada.api_url + "/token", headers={"x-api-key": "wrong"}, timeout=10).status_code == 401
    token = api_token(verkada)
    devices = requests.get(verkada.api_url + "/cameras/v1/devices", headers={"x-verkada-auth": token}, timeout=10)
    assert devices.status_code == 200 and "next_page_token" in devices.json()
    keyed = requests.get(verkada.api_url + "/cameras/v1/devices", headers={"x-api-key": verkada.api_key}, timeout=10)
    assert keyed.status_code == 401
    verkada.control.expire_verkada_tokens()
    expired = requests.get(verkada.api_url + "/cameras/v1/devices", headers={"x-verkada-auth": token}, timeout=10)
    assert expired.status_code == 401 and expired.json() == {"id": "0e2d", "message": "Token expired", "data": None}


def test_pages_are_at_most_200_and_playlists_at_most_an_hour(verkada):
    auth = {"x-verkada-auth": api_token(verkada)}
    too_big = requests.get(verkada.api_url + "/cameras/v1/devices", params={"page_size": 201}, headers=auth, timeout=10)
    assert too_big.status_code == 400 and set(too_big.json()) == {"id", "message", "data"}
    jwt = requests.get(verkada.api_url + "/cameras/v1/footage/token", headers=auth, timeout=10).json()["jwt"]
    camera = verkada.control.add_camera(Name="x")["Id"]
    start = int((datetime.now(UTC) - timedelta(hours=3)).timestamp())
    query = {
        "org_id": verkada.org_id,
        "camera_id": camera,
        "start_time": start,
        "resolution": "high_res",
        "type": "stream",
    }
    url = verkada.api_url + "/stream/cameras/v1/footage/stream/stream.m3u8"
    assert requests.get(url, params={**query, "end_time": start + 3601, "jwt": jwt}, timeout=10).status_code == 400
    assert requests.get(url, params={**query, "end_time": start + 3600}, timeout=10).status_code == 401  # no jwt
    wrong_org = {**query, "end_time": start + 60, "jwt": jwt, "org_id": "another"}
    assert requests.get(url, params=wrong_org, timeout=10).status_code == 403
    listed = requests.get(url, params={**query, "end_time": start + 3600, "jwt": jwt}, timeout=10)
    assert listed.status_code == 200 and listed.text.startswith("#EXTM3U") and "#EXT-X-ENDLIST" in listed.text


def test_past_the_rate_limit_every_request_in_the_cooldown_is_refused(verkada):
    verkada.control.configure(RateLimitPerMinute=2, RateLimitCooldownSeconds=30)
    statuses = [
        requests.post(verkada.api_url + "/token", headers={"x-api-key": "k"}, timeout=10).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 429, 429]
    counts = verkada.control.verkada_tokens()
    assert (counts["RateLimited"], counts["CooldownViolations"]) == (2, 1)
