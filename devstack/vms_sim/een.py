"""The EEN profile: an engine served by the global (auth + api) host and the account API host."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, Response, jsonify

from .app import create_app
from .config import VmsConfig
from .een_api import API, MP4_PATH, account_blueprint, global_blueprint, render_error
from .een_auth import EenAuth
from .engine import VmsEngine
from .errors import VmsError
from .jobs import OutputFile
from .profile import Profile
from .server import AppServer
from .streams import Stream
from .timeutil import format_een, parse_een

GLOBAL_OPERATIONS = ("token", "client_settings")
ACCOUNT_OPERATIONS = (
    "list_cameras", "list_media", "media_stream", "live_image", "recorded_image", "create_export", "get_job",
    "delete_job", "download_file", "download_download", "list_files", "delete_file", "delete_trash_file",
    "current_user", "list_jobs", "list_deleted_files",
)  # fmt: skip


class EenSimulator(Profile):
    """Eagle Eye Networks API v3: OAuth with rotating refresh tokens, clientSettings, cameras, media, exports."""

    vendor = "een"
    operations = GLOBAL_OPERATIONS + ACCOUNT_OPERATIONS

    def __init__(
        self,
        *,
        seed: str = "een",
        camera_count: int = 12,
        config: VmsConfig | None = None,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        engine = VmsEngine("een", seed=seed, camera_count=camera_count, config=config)
        super().__init__(engine, host=host, verbose=verbose)
        self.auth = EenAuth(self.engine.clock, self.engine.config, seed)
        self.account_id = f"{int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % 10**8:08d}"

    def _create_servers(self) -> list[AppServer]:
        global_app = create_app("devstack.vms_sim.een_global", self, [global_blueprint(self)], render_error)
        account_app = create_app("devstack.vms_sim.een_account", self, [account_blueprint(self)], render_error)
        return [
            AppServer(global_app, "een-global", self.host, verbose=self.verbose),
            AppServer(account_app, "een-account", self.host, verbose=self.verbose),
        ]

    # URLs ------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The global host: stands in for both auth.eagleeyenetworks.com and api.eagleeyenetworks.com."""
        return self._server(0).url

    @property
    def auth_url(self) -> str:
        return self.api_url

    @property
    def token_url(self) -> str:
        return self.auth_url + "/oauth2/token"

    @property
    def account_url(self) -> str:
        """The account's own API host (what clientSettings' httpsBaseUrl names)."""
        return self._server(1).url

    def https_base_url(self) -> dict[str, Any]:
        server = self._server(1)
        return {"hostname": server.host, "port": server.port}

    def mp4_url(self, stream_type: str, camera_id: str, start_ms: int, end_ms: int) -> str:
        path = MP4_PATH.format(type=stream_type)
        params = {"deviceId": camera_id, "startTimestamp": format_een(start_ms), "endTimestamp": format_een(end_ms)}
        query = self.engine.signer.sign(path, params, self.engine.config.media_url_ttl_seconds)
        return f"{self.account_url}{path}?{query}"

    def file_url(self, output: OutputFile) -> str:
        """Where an export file downloads from: the archive, or the downloads folder (`autoDelete`)."""
        folder = "downloads" if output.folder == "downloads" else "files"
        return f"{self.account_url}{API}/{folder}/{output.id}:download"

    # Profile ------------------------------------------------------------------------------------

    def resolve_url(self, url: str) -> Stream:
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        if parts.path in (MP4_PATH.format(type=t) for t in ("main", "preview")):
            camera = self.engine.cameras.get(params.get("deviceId", ""))
            try:
                start, end = parse_een(params["startTimestamp"]), parse_een(params["endTimestamp"])
            except (KeyError, ValueError):
                camera = None
            if camera is not None:
                return self.engine.recording_stream(camera.id, start, end)
        for prefix in (f"{API}/files/", f"{API}/downloads/"):
            if parts.path.startswith(prefix) and parts.path.endswith(":download"):
                found = self.engine.jobs.file(parts.path[len(prefix) : -len(":download")], self.engine.now_ms())
                if found is not None:
                    return found[1].stream
        raise VmsError(404, f"no stream is served at {parts.path}")

    def info(self) -> dict[str, Any]:
        return {
            "AuthUrl": self.auth_url,
            "ApiUrl": self.api_url,
            "TokenUrl": self.token_url,
            "AccountUrl": self.account_url,
            "AccountId": self.account_id,
            "ClientId": self.auth.client_id,
        }

    def job_urls(self, job_id: str) -> dict[str, str]:
        job = self.engine.jobs.get(job_id)
        return {} if job is None else {f.id: self.file_url(f) for f in job.files}

    def extend_control(self, bp: Blueprint) -> None:
        @bp.post("/een/grant")
        def new_grant() -> Response:
            return jsonify({"RefreshToken": self.auth.new_grant()})

        @bp.post("/een/revoke")
        def revoke() -> Response:
            self.auth.revoke()
            return Response(status=204)

        @bp.post("/een/expire-tokens")
        def expire_tokens() -> Response:
            self.auth.expire_access_tokens()
            return Response(status=204)

        @bp.get("/een/tokens")
        def tokens() -> Response:
            return jsonify(self.auth.to_json())

    def reset(self) -> None:
        super().reset()
        self.auth.reset()
