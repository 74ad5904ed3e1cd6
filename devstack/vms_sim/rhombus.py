"""The Rhombus profile: an engine served by the API host and the media host."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from .app import create_app
from .config import VmsConfig
from .engine import VmsEngine
from .errors import VmsError
from .profile import Profile
from .rhombus_api import api_blueprint, media_blueprint, render_error
from .server import AppServer
from .streams import Stream

API_OPERATIONS = (
    "get_camera_states", "get_presence", "get_frame_uri", "splice", "get_clip", "delete_clip", "list_clips",
)  # fmt: skip
MEDIA_OPERATIONS = ("snapshot", "frame", "download_clip")
DEFAULT_REGION = "us-west-2"
SEAM_MS = 2000  # Rhombus records across gaps shorter than this: its presence windows show them as seams


class RhombusSimulator(Profile):
    """Rhombus: API-key headers, POST-everything API with 200 + error:true, media host, clip exports."""

    vendor = "rhombus"
    operations = API_OPERATIONS + MEDIA_OPERATIONS
    status_200_faults = True

    def __init__(
        self,
        *,
        seed: str = "rhombus",
        camera_count: int = 12,
        config: VmsConfig | None = None,
        region: str = DEFAULT_REGION,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        engine = VmsEngine("rhombus", seed=seed, camera_count=camera_count, config=config, seam_ms=SEAM_MS)
        super().__init__(engine, host=host, verbose=verbose)
        self.region = region
        self.api_key = secrets.token_urlsafe(24)

    def _create_servers(self) -> list[AppServer]:
        api = create_app("devstack.vms_sim.rhombus_api", self, [api_blueprint(self)], render_error)
        media = create_app("devstack.vms_sim.rhombus_media", self, [media_blueprint(self)], render_error)
        return [
            AppServer(api, "rhombus-api", self.host, verbose=self.verbose),
            AppServer(media, "rhombus-media", self.host, verbose=self.verbose),
        ]

    @property
    def api_url(self) -> str:
        return self._server(0).url

    @property
    def media_url(self) -> str:
        return self._server(1).url

    def frame_url(self, camera_id: str, frame_ms: int) -> str:
        path = f"/media/frames/{self.region}/{frame_ms}.jpeg"
        query = self.engine.signer.sign(path, {"cameraUuid": camera_id}, self.engine.config.media_url_ttl_seconds)
        return f"{self.media_url}{path}?{query}"

    def clip_url(self, clip_uuid: str) -> str:
        return f"{self.media_url}/media/metadata/{self.region}/{clip_uuid}.mp4"

    def resolve_url(self, url: str) -> Stream:
        path = urlsplit(url).path
        prefix = f"/media/metadata/{self.region}/"
        if path.startswith(prefix) and path.endswith(".mp4"):
            job = self.engine.jobs.get(path[len(prefix) : -len(".mp4")])
            if job is not None:
                return job.stream
        raise VmsError(404, f"no stream is served at {path}")

    def info(self) -> dict[str, Any]:
        return {"ApiUrl": self.api_url, "MediaUrl": self.media_url, "MediaRegion": self.region}

    def job_url(self, job_id: str) -> str | None:
        return self.clip_url(job_id)
