"""The Verkada profile: one API host (REST + HLS streaming), its tokens, rate limit and thumbnail cache."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify

from .app import create_app
from .cameras import Camera
from .config import VmsConfig
from .engine import VmsEngine
from .errors import VmsError
from .profile import Profile
from .server import AppServer
from .streams import Stream
from .timeutil import HOUR_MS
from .verkada_api import OrgRateLimit, Tokens, api_blueprint, render_error

OPERATIONS = ("token", "stream_token", "cameras", "thumbnail", "stream")


class VerkadaSimulator(Profile):
    """Verkada Command: API key → 30-minute tokens, paginated devices, cached thumbnails, HLS footage."""

    vendor = "verkada"
    operations = OPERATIONS

    def __init__(
        self,
        *,
        seed: str = "verkada",
        camera_count: int = 12,
        config: VmsConfig | None = None,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        engine = VmsEngine("verkada", seed=seed, camera_count=camera_count, config=config)
        super().__init__(engine, host=host, verbose=verbose)
        self.api_key = "vkd_" + secrets.token_urlsafe(24)
        self.org_id = str(uuid.UUID(bytes=hashlib.sha256(f"{seed}|org".encode()).digest()[:16]))
        self.site_id = str(uuid.UUID(bytes=hashlib.sha256(f"{seed}|site".encode()).digest()[:16]))
        self.tokens = Tokens()
        self.rate = OrgRateLimit()

    def _create_servers(self) -> list[AppServer]:
        app = create_app("devstack.vms_sim.verkada_api", self, [api_blueprint(self)], render_error)
        return [AppServer(app, "verkada-api", self.host, verbose=self.verbose)]

    @property
    def api_url(self) -> str:
        return self._server(0).url

    def thumbnail_time(self, camera: Camera, asked_ms: int) -> int | None:
        """The cached thumbnail nearest `asked_ms` (ms): one every `thumbnail_interval_seconds` while the camera
        recorded, at a per-camera phase, searched one hour either side (Verkada's default window)."""
        interval = self.engine.config.thumbnail_interval_seconds * 1000
        phase = int.from_bytes(hashlib.sha256(camera.id.encode()).digest()[:4], "big") % interval // 1000 * 1000
        now = self.engine.now_ms()
        nearest = (asked_ms - phase) // interval * interval + phase
        candidates = sorted(
            (nearest + k * interval for k in range(-HOUR_MS // interval - 1, HOUR_MS // interval + 2)),
            key=lambda t: (abs(t - asked_ms), t),
        )
        for moment in candidates:
            if (
                abs(moment - asked_ms) <= HOUR_MS
                and moment <= now
                and self.engine.recordings(camera, moment, moment + 1)
            ):
                return moment
        return None

    def resolve_url(self, url: str) -> Stream:
        raise VmsError(404, "Verkada serves HLS playlists, not single streams")

    def info(self) -> dict[str, Any]:
        return {"ApiUrl": self.api_url, "OrgId": self.org_id}

    def extend_control(self, bp: Blueprint) -> None:
        @bp.get("/verkada/tokens")
        def verkada_tokens() -> Response:
            return jsonify({**self.tokens.to_json(), **self.rate.to_json()})

        @bp.post("/verkada/expire-tokens")
        def verkada_expire_tokens() -> Response:
            self.tokens.expire_all()
            return Response(status=204)

    def reset(self) -> None:
        super().reset()
        self.tokens.reset()
        self.rate.reset()
