"""Which VMS the agent talks to, and its credentials, from app settings (environment variables).

VMS_KIND=een      EEN_CLIENT_ID, EEN_CLIENT_SECRET, EEN_REFRESH_TOKEN (from the one-time consent);
                  optional EEN_AUTH_URL, EEN_API_URL, EEN_VIDEO_ROUTE (direct|export), EEN_TOKEN_TABLE
VMS_KIND=rhombus  RHOMBUS_API_KEY; optional RHOMBUS_REGION (us|eu), RHOMBUS_API_URL, RHOMBUS_MEDIA_URL
VMS_KIND=verkada  VERKADA_API_KEY, VERKADA_ORG_ID; optional VERKADA_REGION (us|eu|au|gov), VERKADA_API_URL;
                  its short-lived tokens are shared in the EEN_TOKEN_TABLE table (default vmstokens)
EEN and Verkada   CREDENTIALS_KEY_URI (Azure: the Key Vault key that wraps the data keys sealing every stored
                  credential) or CREDENTIALS_KEY_FILE (the local stack's key file, local only)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from azure.core.credentials import TokenCredential
from azure.data.tables import TableClient
from pydantic import ValidationInfo, field_validator

from shared.config import Settings, SettingsError, choice, text, url
from shared.http.retry import RetryingSender, RetryPolicy, Timeouts
from shared.http.session import pooled_session
from shared.secrets.keyring import KeyVaultKeyWrapper, KeyWrapper, LocalKeyFileWrapper, credentials_sealer
from shared.secrets.sealing import Sealer
from shared.vms.base import VmsAdapter
from shared.vms.een.adapter import EenAdapter
from shared.vms.een.auth import EenCredentials, EenTokens
from shared.vms.grant_store import GrantStore
from shared.vms.rhombus.adapter import REGIONS, RhombusAdapter
from shared.vms.verkada.regions import REGIONS as VERKADA_REGIONS

KINDS = ("een", "rhombus", "verkada")
EEN_AUTH_URL = "https://auth.eagleeyenetworks.com"
EEN_API_URL = "https://api.eagleeyenetworks.com"
DEFAULT_TOKEN_TABLE = "vmstokens"  # noqa: S105 - a table name
# VMS downloads can be long: reads may stall while the VMS assembles a file.
VMS_TIMEOUTS = Timeouts(connect=10.0, read=120.0)
REQUIRED = {
    "een": ("EEN_CLIENT_ID", "EEN_CLIENT_SECRET", "EEN_REFRESH_TOKEN"),
    "rhombus": ("RHOMBUS_API_KEY",),
    "verkada": ("VERKADA_API_KEY", "VERKADA_ORG_ID"),
}
KEY_SETTINGS = ("CREDENTIALS_KEY_URI", "CREDENTIALS_KEY_FILE")
READ_FOR = {
    "een": ("EEN_", *KEY_SETTINGS),
    "rhombus": ("RHOMBUS_",),
    "verkada": ("VERKADA_", "EEN_TOKEN_TABLE", *KEY_SETTINGS),
}
"""Only the chosen vendor's settings are read; another vendor's are ignored, whatever they hold."""


class VmsConfigError(SettingsError):
    """A VMS setting is missing or malformed; the message names the setting, never its value."""


class VmsSettings(Settings):
    error = VmsConfigError

    kind: str = choice("VMS_KIND", KINDS)
    een_client_id: str = text("EEN_CLIENT_ID")
    een_client_secret: str = text("EEN_CLIENT_SECRET", secret=True)
    een_refresh_token: str = text("EEN_REFRESH_TOKEN", secret=True)
    een_auth_url: str = url("EEN_AUTH_URL", EEN_AUTH_URL)
    een_api_url: str = url("EEN_API_URL", EEN_API_URL)
    een_video_route: str = choice("EEN_VIDEO_ROUTE", ("direct", "export"), "direct")
    een_token_table: str = text("EEN_TOKEN_TABLE", DEFAULT_TOKEN_TABLE)
    rhombus_api_key: str = text("RHOMBUS_API_KEY", secret=True)
    rhombus_region: str = choice("RHOMBUS_REGION", REGIONS, "us")
    rhombus_api_url: str = url("RHOMBUS_API_URL", "")
    rhombus_media_url: str = url("RHOMBUS_MEDIA_URL", "")
    verkada_api_key: str = text("VERKADA_API_KEY", secret=True)
    verkada_org_id: str = text("VERKADA_ORG_ID")
    verkada_region: str = choice("VERKADA_REGION", VERKADA_REGIONS, "us")
    verkada_api_url: str = url("VERKADA_API_URL", "")
    credentials_key_uri: str = url("CREDENTIALS_KEY_URI", "")
    credentials_key_file: str = text("CREDENTIALS_KEY_FILE")

    @field_validator("rhombus_api_url", "rhombus_media_url", "verkada_api_url", mode="after")
    @classmethod
    def _region_host(cls, value: str, info: ValidationInfo) -> str:
        """Unset hosts are the region's (a region that is wrong is reported on its own)."""
        if value:
            return value
        if info.field_name == "verkada_api_url":
            return VERKADA_REGIONS.get(info.data.get("verkada_region", "us"), VERKADA_REGIONS["us"])
        api, media = REGIONS.get(info.data.get("rhombus_region", "us"), REGIONS["us"])
        return api if info.field_name == "rhombus_api_url" else media

    @classmethod
    def names_in_use(cls, given: Mapping[str, str]) -> Iterable[str]:
        prefixes = READ_FOR.get(given.get("VMS_KIND", "").lower(), ())
        return [name for name in cls.setting_names() if name == "VMS_KIND" or name.startswith(prefixes)]

    @classmethod
    def cross_checks(cls, given: Mapping[str, str]) -> list[tuple[str, str]]:
        kind = given.get("VMS_KIND", "").lower()
        missing = [name for name in REQUIRED.get(kind, ()) if name not in given]
        problems = [("VMS_KIND", f"VMS_KIND={kind} needs {', '.join(missing)}")] if missing else []
        if kind in ("een", "verkada") and not any(name in given for name in KEY_SETTINGS):
            problems.append(
                (
                    "CREDENTIALS_KEY_URI",
                    f"VMS_KIND={kind} stores credentials sealed: set CREDENTIALS_KEY_URI (the Key Vault key; "
                    "CREDENTIALS_KEY_FILE on the local stack only)",
                )
            )
        return problems


def credentials_key_wrapper(settings: VmsSettings, credential: TokenCredential | None) -> KeyWrapper:
    """The key that wraps the credentials' data keys: Key Vault in Azure, the local key file locally."""
    if settings.credentials_key_uri:
        if credential is None:
            raise VmsConfigError("CREDENTIALS_KEY_URI needs the app's identity (a credential) to reach Key Vault")
        return KeyVaultKeyWrapper(settings.credentials_key_uri, credential)
    if settings.credentials_key_file:
        return LocalKeyFileWrapper(settings.credentials_key_file)
    raise VmsConfigError(f"VMS_KIND={settings.kind} needs CREDENTIALS_KEY_URI (or CREDENTIALS_KEY_FILE locally)")


def build_adapter(
    settings: VmsSettings,
    *,
    token_table: TableClient | None = None,
    credential: TokenCredential | None = None,
    key_wrapper: KeyWrapper | None = None,
    retry: RetryPolicy | None = None,
    pool_size: int = 16,
) -> VmsAdapter:
    """The configured adapter. EEN and Verkada need `token_table`, the credentials table where their tokens
    are shared, sealed (and `credential`, the app's identity, when the key is in Key Vault; `key_wrapper`
    replaces the key the settings name)."""
    sender = RetryingSender(pooled_session(pool_size), retry or RetryPolicy(), VMS_TIMEOUTS)

    def sealer(table: TableClient) -> Sealer:
        return credentials_sealer(table, key_wrapper or credentials_key_wrapper(settings, credential))

    if settings.kind == "verkada":
        # Imported only here: the Verkada adapter brings PyAV (FFmpeg's libraries, ~100 MB), which EEN and
        # Rhombus agents never need and should not load at every cold start.
        from shared.vms.verkada.adapter import VerkadaAdapter

        if token_table is None:
            raise VmsConfigError("the Verkada adapter needs a table for its shared tokens (EEN_TOKEN_TABLE)")
        return VerkadaAdapter(
            settings.verkada_api_key,
            settings.verkada_org_id,
            sender,
            api_url=settings.verkada_api_url,
            token_table=token_table,
            sealer=sealer(token_table),
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
    tokens = EenTokens(credentials, GrantStore(token_table, "een", settings.een_client_id, sealer(token_table)), sender)
    return EenAdapter(tokens, sender, api_url=settings.een_api_url, video_route=settings.een_video_route)
