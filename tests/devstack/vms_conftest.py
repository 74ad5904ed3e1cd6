"""Fixtures for the VMS simulator tests (a pytest plugin: test modules name it in `pytest_plugins`).

The simulators are the ones the session's LocalStack runs; each test starts from a reset profile.
The small clients below follow the vendors' documentation by hand, with `requests` only: they test
the simulator, not an adapter.

Test modules also import helpers from here before pytest loads it as a plugin, so its asserts are
not rewritten (PYTEST_DONT_REWRITE): they carry their own messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from devstack import LocalStack
from devstack.vms_sim import VmsSimulatorControl
from devstack.vms_sim.stack import EenEndpoints, RhombusEndpoints

API = "/api/v3.0"


def een_time(moment: datetime) -> str:
    """EEN's format: milliseconds and an explicit +00:00 offset."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def sim_now(control: VmsSimulatorControl) -> datetime:
    return parse_time(control.clock()["NowUtc"])


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class EenClient:
    """Refresh-token OAuth, clientSettings discovery and bearer calls, as EEN's docs describe them."""

    een: EenEndpoints
    refresh_token: str = ""
    access_token: str = ""
    base_url: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.refresh_token = self.refresh_token or self.een.initial_refresh_token

    def token_request(self, refresh_token: str | None = None, auth: tuple[str, str] | None = None) -> requests.Response:
        return self.session.post(
            self.een.auth_url + "/oauth2/token",
            auth=auth or (self.een.client_id, self.een.client_secret),
            data={
                "grant_type": "refresh_token",
                "scope": "vms.all",
                "refresh_token": refresh_token or self.refresh_token,
            },
            headers={"Accept": "application/json"},
            timeout=10,
        )

    def refresh(self) -> dict[str, Any]:
        response = self.token_request()
        assert response.status_code == 200, response.text
        body = response.json()
        self.refresh_token, self.access_token = body["refresh_token"], body["access_token"]
        return body

    def login(self) -> EenClient:
        """Refresh, then discover the account's base URL through clientSettings."""
        self.refresh()
        settings = self.session.get(self.een.api_url + API + "/clientSettings", headers=self.auth_header, timeout=10)
        assert settings.status_code == 200, settings.text
        host = settings.json()["httpsBaseUrl"]
        self.base_url = f"http://{host['hostname']}:{host['port']}"
        return self

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + API + path
        headers = {**self.auth_header, **kwargs.pop("headers", {})}
        return self.session.get(url, params=params, headers=headers, timeout=30, **kwargs)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.base_url + API + path, json=body, headers=self.auth_header, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base_url + API + path, headers=self.auth_header, timeout=30)

    def media(self, camera_id: str, start: datetime, end: datetime, **extra: Any) -> requests.Response:
        params = {
            "deviceId": camera_id, "type": "main", "mediaType": "video", "startTimestamp__gte": een_time(start),
            "endTimestamp__lte": een_time(end), "include": "mp4Url", **extra,
        }  # fmt: skip
        return self.get("/media", params)


@dataclass
class RhombusClient:
    """API-key headers, POST + JSON on the API host, GET on the media host, as Rhombus documents them."""

    rhombus: RhombusEndpoints
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def headers(self) -> dict[str, str]:
        return {"x-auth-scheme": "api-token", "x-auth-apikey": self.rhombus.api_key}

    def call(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.post(
            self.rhombus.api_url + "/api" + path,
            json={} if body is None else body,
            headers=self.headers if headers is None else headers,
            timeout=30,
        )

    def ok(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.call(path, body)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["error"] is False, data
        return data

    def media(self, url_or_path: str, **kwargs: Any) -> requests.Response:
        url = url_or_path if url_or_path.startswith("http") else self.rhombus.media_url + url_or_path
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.session.get(url, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def een(stack: LocalStack) -> Iterator[EenEndpoints]:
    endpoints = stack.een
    endpoints.control.reset()
    yield endpoints


@pytest.fixture
def een_sim(een: EenEndpoints) -> VmsSimulatorControl:
    return een.control


@pytest.fixture
def een_client(een: EenEndpoints) -> EenClient:
    return EenClient(een).login()


@pytest.fixture
def rhombus(stack: LocalStack) -> Iterator[RhombusEndpoints]:
    endpoints = stack.rhombus
    endpoints.control.reset()
    yield endpoints


@pytest.fixture
def rhombus_sim(rhombus: RhombusEndpoints) -> VmsSimulatorControl:
    return rhombus.control


@pytest.fixture
def rhombus_client(rhombus: RhombusEndpoints) -> RhombusClient:
    return RhombusClient(rhombus)


def camera_with(control: VmsSimulatorControl, **wanted: Any) -> dict[str, Any]:
    """The first camera whose control summary matches, e.g. camera_with(c, Online=False)."""
    for camera in control.cameras():
        if all(camera[name] == value for name, value in wanted.items()):
            return camera
    raise AssertionError(f"no seeded camera with {wanted}")


def recent_window(control: VmsSimulatorControl, hours: float = 2) -> tuple[datetime, datetime]:
    """A window ending at the last full hour before the simulator's now."""
    end = hour_floor(sim_now(control))
    return end - timedelta(hours=hours), end
