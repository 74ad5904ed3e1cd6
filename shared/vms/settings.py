"""Which VMS the agent talks to, and its credentials, from app settings (environment variables).

VMS_KIND=een      EEN_CLIENT_ID, EEN_CLIENT_SECRET, EEN_REFRESH_TOKEN (from the one-time consent);
                  optional EEN_AUTH_URL, EEN_API_URL, EEN_VIDEO_ROUTE (direct|export), EEN_TOKEN_TABLE
VMS_KIND=rhombus  RHOMBUS_API_KEY; optional RHOMBUS_REGION (us|eu), RHOMBUS_API_URL, RHOMBUS_MEDIA_URL
VMS_KIND=verkada  VERKADA_API_KEY, VERKADA_ORG_ID; optional VERKADA_REGION (us|eu|au|gov), VERKADA_API_URL;
                  its short-lived tokens are shared in the EEN_TOKEN_TABLE table (default vmstokens)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from azure.data.tables import TableClient

from shared.http.retry import RetryingSender, RetryPolicy, Timeouts
from shared.http.session import pooled_session
from shared.vms.base import VmsAdapter
from shared.vms.een.adapter import EenAdapter
from shared.vms.een.auth import EenCredentials, EenTokens
from shared.vms.grant_store import GrantStore
from shared.vms.rhombus.adapter import REGIONS, RhombusAdapter
from shared.vms.verkada.adapter import REGIONS as VERKADA_REGIONS
from shared.vms.verkada.adapter import VerkadaAdapter

KINDS = ("een", "rhombus", "verkada")
EEN_AUTH_URL = "https://auth.eagleeyenetworks.com"
EEN_API_URL = "https://api.eagleeyenetworks.com"
DEFAULT_TOKEN_TABLE = "vmstokens"  # noqa: S105 - a table name
# VMS downloads can be long: reads may stall while the VMS assembles a file.
VMS_TIMEOUTS = Timeouts(connect=10.0, read=120.0)


class VmsConfigError(ValueError):
    """A VMS setting is missing or malformed; the message names the setting, never its value."""


@dataclass(frozen=True)
class VmsSettings:
    kind: str
    een_client_id: str = ""
    een_client_secret: str = field(default="", repr=False)
    een_refresh_token: str = field(default="", repr=False)
    een_auth_url: str = EEN_AUTH_URL
    een_api_url: str = EEN_API_URL
    een_video_route: str = "direct"
    een_token_table: str = DEFAULT_TOKEN_TABLE
    rhombus_api_key: str = field(default="", repr=False)
    rhombus_api_url: str = REGIONS["us"][0]
    rhombus_media_url: str = REGIONS["us"][1]
    verkada_api_key: str = field(default="", repr=False)
    verkada_org_id: str = ""
    verkada_api_url: str = VERKADA_REGIONS["us"]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VmsSettings:
        def get(name: str, default: str = "") -> str:
            value = (env.get(name) or default).strip()
            if value.lower().startswith("@microsoft.keyvault("):
                raise VmsConfigError(
                    f"{name} holds an unresolved Key Vault reference: the app could not read the secret "
                    "(check the secret exists and the app's identity has 'Key Vault Secrets User')"
                )
            return value

        def url(name: str, default: str) -> str:
            value = get(name, default).rstrip("/")
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise VmsConfigError(f"{name} must be an absolute http(s) URL")
            return value

        kind = get("VMS_KIND").lower()
        if kind not in KINDS:
            raise VmsConfigError(f"VMS_KIND must be one of {', '.join(KINDS)} (got {kind or 'nothing'})")
        if kind == "een":
            missing = [n for n in ("EEN_CLIENT_ID", "EEN_CLIENT_SECRET", "EEN_REFRESH_TOKEN") if not get(n)]
            if missing:
                raise VmsConfigError(f"VMS_KIND=een needs {', '.join(missing)}")
            route = get("EEN_VIDEO_ROUTE", "direct").lower()
            if route not in ("direct", "export"):
                raise VmsConfigError("EEN_VIDEO_ROUTE must be 'direct' or 'export'")
            return cls(
                kind=kind,
                een_client_id=get("EEN_CLIENT_ID"),
                een_client_secret=get("EEN_CLIENT_SECRET"),
                een_refresh_token=get("EEN_REFRESH_TOKEN"),
                een_auth_url=url("EEN_AUTH_URL", EEN_AUTH_URL),
                een_api_url=url("EEN_API_URL", EEN_API_URL),
                een_video_route=route,
                een_token_table=get("EEN_TOKEN_TABLE", DEFAULT_TOKEN_TABLE),
            )
        if kind == "verkada":
            return cls._verkada(get, url)
        if not get("RHOMBUS_API_KEY"):
            raise VmsConfigError("VMS_KIND=rhombus needs RHOMBUS_API_KEY")
        region = get("RHOMBUS_REGION", "us").lower()
        if region not in REGIONS:
            raise VmsConfigError(f"RHOMBUS_REGION must be one of {', '.join(REGIONS)}")
        api_default, media_default = REGIONS[region]
        return cls(
            kind=kind,
            rhombus_api_key=get("RHOMBUS_API_KEY"),
            rhombus_api_url=url("RHOMBUS_API_URL", api_default),
            rhombus_media_url=url("RHOMBUS_MEDIA_URL", media_default),
        )

    @classmethod
    def _verkada(cls, get: Callable[..., str], url: Callable[[str, str], str]) -> VmsSettings:
        missing = [n for n in ("VERKADA_API_KEY", "VERKADA_ORG_ID") if not get(n)]
        if missing:
            raise VmsConfigError(f"VMS_KIND=verkada needs {', '.join(missing)}")
        region = get("VERKADA_REGION", "us").lower()
        if region not in VERKADA_REGIONS:
            raise VmsConfigError(f"VERKADA_REGION must be one of {', '.join(VERKADA_REGIONS)}")
        return cls(
            kind="verkada",
            verkada_api_key=get("VERKADA_API_KEY"),
            verkada_org_id=get("VERKADA_ORG_ID"),
            verkada_api_url=url("VERKADA_API_URL", VERKADA_REGIONS[region]),
            een_token_table=get("EEN_TOKEN_TABLE", DEFAULT_TOKEN_TABLE),
        )


def build_adapter(
    settings: VmsSettings,
    *,
    token_table: TableClient | None = None,
    retry: RetryPolicy | None = None,
    pool_size: int = 16,
) -> VmsAdapter:
    """The configured adapter. EEN and Verkada need `token_table`: where their tokens are shared."""
    sender = RetryingSender(pooled_session(pool_size), retry or RetryPolicy(), VMS_TIMEOUTS)
    if settings.kind == "verkada":
        if token_table is None:
            raise VmsConfigError("the Verkada adapter needs a table for its shared tokens (EEN_TOKEN_TABLE)")
        return VerkadaAdapter(
            settings.verkada_api_key,
            settings.verkada_org_id,
            sender,
            api_url=settings.verkada_api_url,
            token_table=token_table,
        )
    if settings.kind == "rhombus":
        return RhombusAdapter(
            settings.rhombus_api_key, sender, api_url=settings.rhombus_api_url, media_url=settings.rhombus_media_url
        )
    if token_table is None:
        raise VmsConfigError("the EEN adapter needs a table for its OAuth grant (EEN_TOKEN_TABLE)")
    credentials = EenCredentials(
        token_url=settings.een_auth_url + "/oauth2/token",
        client_id=settings.een_client_id,
        client_secret=settings.een_client_secret,
        seed_refresh_token=settings.een_refresh_token,
    )
    tokens = EenTokens(credentials, GrantStore(token_table, "een", settings.een_client_id), sender)
    return EenAdapter(tokens, sender, api_url=settings.een_api_url, video_route=settings.een_video_route)
