"""Both VMS profiles on free loopback ports, as the LocalStack runs them, with what a client needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import VmsConfig
from .control import VmsSimulatorControl
from .een import EenSimulator
from .rhombus import RhombusSimulator
from .verkada import VerkadaSimulator


@dataclass(frozen=True)
class EenEndpoints:
    auth_url: str  # token endpoint: {auth_url}/oauth2/token
    api_url: str  # global API host: {api_url}/api/v3.0/clientSettings
    account_url: str  # the account's API host (what clientSettings points to)
    client_id: str
    client_secret: str
    initial_refresh_token: str  # the customer's one-time consent; valid until first used (or after a reset)
    control: VmsSimulatorControl

    def __repr__(self) -> str:
        return f"EenEndpoints(api_url={self.api_url!r}, account_url={self.account_url!r}, client_id={self.client_id!r})"


@dataclass(frozen=True)
class RhombusEndpoints:
    api_url: str
    media_url: str
    api_key: str
    control: VmsSimulatorControl

    def __repr__(self) -> str:
        return f"RhombusEndpoints(api_url={self.api_url!r}, media_url={self.media_url!r})"


@dataclass(frozen=True)
class VerkadaEndpoints:
    api_url: str
    api_key: str
    org_id: str
    control: VmsSimulatorControl

    def __repr__(self) -> str:
        return f"VerkadaEndpoints(api_url={self.api_url!r}, org_id={self.org_id!r})"


class VmsSimulators:
    """The EEN, Rhombus and Verkada simulators together; start() and stop() all, state() without secrets."""

    def __init__(
        self,
        *,
        camera_count: int = 12,
        config: VmsConfig | None = None,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        def own_config() -> VmsConfig | None:
            return None if config is None else config.copy()

        self.een_simulator = EenSimulator(camera_count=camera_count, config=own_config(), host=host, verbose=verbose)
        self.rhombus_simulator = RhombusSimulator(
            camera_count=camera_count, config=own_config(), host=host, verbose=verbose
        )
        self.verkada_simulator = VerkadaSimulator(
            camera_count=camera_count, config=own_config(), host=host, verbose=verbose
        )
        self._started = False

    def start(self) -> VmsSimulators:
        try:
            self.een_simulator.start()
            self.rhombus_simulator.start()
            self.verkada_simulator.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        self._started = False
        try:
            self.verkada_simulator.stop()
            self.rhombus_simulator.stop()
        finally:
            self.een_simulator.stop()

    @property
    def een(self) -> EenEndpoints:
        sim = self.een_simulator
        return EenEndpoints(
            auth_url=sim.auth_url,
            api_url=sim.api_url,
            account_url=sim.account_url,
            client_id=sim.auth.client_id,
            client_secret=sim.auth.client_secret,
            initial_refresh_token=sim.auth.initial_refresh_token,
            control=sim.control,
        )

    @property
    def rhombus(self) -> RhombusEndpoints:
        sim = self.rhombus_simulator
        return RhombusEndpoints(api_url=sim.api_url, media_url=sim.media_url, api_key=sim.api_key, control=sim.control)

    @property
    def verkada(self) -> VerkadaEndpoints:
        sim = self.verkada_simulator
        return VerkadaEndpoints(api_url=sim.api_url, api_key=sim.api_key, org_id=sim.org_id, control=sim.control)

    def state(self) -> dict[str, Any]:
        """For state.json: URLs and identifiers only."""
        een, rhombus, verkada = self.een, self.rhombus, self.verkada
        return {
            "een": {
                "auth_url": een.auth_url,
                "token_url": een.auth_url + "/oauth2/token",
                "api_url": een.api_url,
                "account_url": een.account_url,
                "client_id": een.client_id,
                "control_url": een.api_url + "/_sim",
            },
            "rhombus": {
                "api_url": rhombus.api_url,
                "media_url": rhombus.media_url,
                "control_url": rhombus.api_url + "/_sim",
            },
            "verkada": {"api_url": verkada.api_url, "org_id": verkada.org_id, "control_url": verkada.api_url + "/_sim"},
        }

    def issued_credentials(self) -> dict[str, list[str]]:
        """Every secret the simulators hold or issued so far, by name: client secrets and API keys, and every
        refresh, access, API and streaming token (for tests that check none is stored in plain text)."""
        een, verkada = self.een_simulator.auth, self.verkada_simulator
        return {
            "een client secret": [een.client_secret],
            "een refresh/access tokens": een.issued(),
            "rhombus api key": [self.rhombus_simulator.api_key],
            "verkada api key": [verkada.api_key],
            "verkada api/stream tokens": verkada.tokens.issued(),
        }

    def credentials_json(self) -> bytes:
        """The secrets (for a 0600 file): EEN client secret and initial refresh token, Rhombus and Verkada API keys."""
        een, rhombus, verkada = self.een, self.rhombus, self.verkada
        return (
            json.dumps(
                {
                    "een": {
                        "client_id": een.client_id,
                        "client_secret": een.client_secret,
                        "initial_refresh_token": een.initial_refresh_token,
                    },
                    "rhombus": {"api_key": rhombus.api_key},
                    "verkada": {"api_key": verkada.api_key, "org_id": verkada.org_id},
                },
                indent=2,
            )
            + "\n"
        ).encode()
