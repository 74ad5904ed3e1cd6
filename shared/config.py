"""The one reader of app settings (environment variables), for the app's own settings and the VMS's.

A group of settings is a pydantic model (`Settings`) whose fields are declared with the factories below
(`text`, `integer`, `boolean`, `host_list`, `url`, `choice`, `schedule`): each names its app setting and
says how it is checked. Reading (`Settings.from_env`) does the same for every setting:

1. surrounding whitespace is stripped, and an empty value means "not set" (the default applies);
2. a value that is still a Key Vault reference (`@Microsoft.KeyVault(...)`: the platform could not
   resolve the secret) is reported, by name;
3. the model validates everything at once, and every problem of every group is reported together, by
   setting name, never with its value (values may be secrets).

The names a group reads are its fields' aliases (`setting_names()`), so the catalogue of settings is
derived from the definitions, not kept beside them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

KEY_VAULT_PREFIX = "@microsoft.keyvault("
KEY_VAULT_HELP = (
    "holds an unresolved Key Vault reference: the app could not read the secret (check that the secret exists, "
    "that the app's identity has the 'Key Vault Secrets User' role and that keyVaultReferenceIdentity is set)"
)


def is_key_vault_reference(value: str) -> bool:
    """The platform leaves `@Microsoft.KeyVault(...)` in place when it cannot resolve the secret."""
    return value.strip().lower().startswith(KEY_VAULT_PREFIX)


class SettingsError(ValueError):
    """One or more settings are missing or malformed; the message lists every problem, by name."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


class SettingProblem(ValueError):
    """A validator's complete sentence about one setting (`setting`), reported as it is."""

    def __init__(self, setting: str, text: str) -> None:
        super().__init__(text)
        self.setting = setting


# ---- field factories: the setting's name, its default, and how it is checked --------------------------


def _field(name: str, default: Any, check: Callable[[Any], Any] | None = None, **options: Any) -> Any:
    """A model field read from app setting `name` (typed Any, as pydantic's own `Field`)."""
    info = Field(default, validation_alias=name, **options)
    if check is not None:
        info.metadata.append(BeforeValidator(check))
    return info


def text(name: str, default: str | None = "", *, secret: bool = False, validate_default: bool = False) -> Any:
    """A string; `validate_default` when the model's own validator decides what "not set" means."""
    return _field(name, default, repr=not secret, validate_default=validate_default)


def integer(name: str, default: int, *, low: int, high: int) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return _field(name, default, check)


def boolean(name: str, default: bool) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ValueError("must be true or false")

    return _field(name, default, check)


def host_list(name: str, default: tuple[str, ...]) -> Any:
    """Comma-separated host names (or patterns)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return tuple(host.strip() for host in value.split(",") if host.strip()) or default

    return _field(name, default, check)


def url(name: str, default: str) -> Any:
    """An absolute http(s) URL, without a trailing slash; "" (when that is the default) means "not set"."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    return _field(name, default, check, validate_default=True)


def choice(name: str, options: Iterable[str], default: str = "") -> Any:
    """One of `options`, case-insensitively; with no default the setting is required."""
    allowed = tuple(options)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value.lower() in allowed:
            return value.lower()
        raise ValueError(f"must be one of {', '.join(allowed)}")

    return _field(name, default, check, validate_default=not default)


def schedule(name: str) -> Any:
    """A timer's schedule, read by the Functions host: a wrong one is named here before the host runs it."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value and len(value.split()) != 6:
            raise ValueError(
                "must be a 6-field NCRONTAB expression with seconds first, e.g. '0 */1 * * * *' "
                f"(got {len(value.split())} fields)"
            )
        return value

    return _field(name, "", check)


# ---- reading --------------------------------------------------------------------------------------------


class Settings(BaseModel):
    """A group of settings. Fields with an alias are app settings; a field whose type is another group is
    read from the same environment (a nested group)."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)
    error: ClassVar[type[SettingsError]] = SettingsError

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """Every app setting this group (and its nested groups) reads."""
        names: list[str] = []
        for field in cls.model_fields.values():
            if isinstance(field.validation_alias, str):
                names.append(field.validation_alias)
            elif (group := _group_of(field.annotation)) is not None:
                names.extend(group.setting_names())
        return tuple(names)

    @classmethod
    def names_in_use(cls, given: Mapping[str, str]) -> Iterable[str]:
        """The settings read, given what is set (a group may read some only in some configurations)."""
        return cls.setting_names()

    @classmethod
    def cross_checks(cls, given: Mapping[str, str]) -> list[tuple[str, str]]:
        """Problems that involve several settings (`given`: every setting in use that is set, unresolved
        Key Vault references included), each as (the setting it is listed under, the sentence)."""
        return []

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read and check the group; raises `cls.error` listing every problem at once."""
        settings, found = cls._read(os.environ if env is None else env)
        if settings is None:
            order = {name: index for index, name in enumerate(cls.setting_names())}
            problems = [text for _, text in sorted(found, key=lambda problem: order.get(problem[0], len(order)))]
            raise cls.error("invalid app settings: " + "; ".join(problems), problems)
        return settings

    @classmethod
    def _read(cls, env: Mapping[str, str]) -> tuple[Self | None, list[tuple[str, str]]]:
        """The group, or None; and every (setting, problem) found."""
        problems: list[tuple[str, str]] = []
        values: dict[str, Any] = {}
        failed_groups: set[str] = set()
        for name, field in cls.model_fields.items():
            group = _group_of(field.annotation) if field.validation_alias is None else None
            if group is not None:
                nested, nested_problems = group._read(env)
                problems += nested_problems
                if nested is None:
                    failed_groups.add(name)  # its problems are listed: not again as "missing"
                else:
                    values[name] = nested
        own = [f.validation_alias for f in cls.model_fields.values() if isinstance(f.validation_alias, str)]
        given = {name: value for name in own if (value := (env.get(name) or "").strip())}
        in_use = set(cls.names_in_use(given))
        given = {name: value for name, value in given.items() if name in in_use}
        unresolved = {name for name, value in given.items() if is_key_vault_reference(value)}
        problems += [(name, f"{name} {KEY_VAULT_HELP}") for name in unresolved]
        problems += cls.cross_checks(given)
        values.update({name: value for name, value in given.items() if name not in unresolved})
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            reported = unresolved | failed_groups
            problems += [problem for problem in _describe(cls, exc) if problem[0] not in reported]
            return None, problems
        return (None, problems) if problems else (settings, problems)


def _group_of(annotation: Any) -> type[Settings] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, Settings) else None


def _describe(model: type[Settings], exc: ValidationError) -> list[tuple[str, str]]:
    """(setting, problem) for each error: the setting's name and what is wrong, never the value."""
    described = []
    for error in exc.errors(include_input=False, include_url=False):
        setting = str(error["loc"][0]) if error["loc"] else "(settings)"
        field = model.model_fields.get(setting)  # a default that failed is located by field name
        if field is not None and isinstance(field.validation_alias, str):
            setting = field.validation_alias
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SettingProblem):
            described.append((cause.setting, str(cause)))
        elif error["type"] == "value_error":
            described.append((setting, f"{setting} {cause}"))
        else:
            described.append((setting, f"{setting}: {error['msg']}"))
    return described


PROXY_SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
CA_BUNDLE_SETTINGS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Not app settings: the process environment `requests` and azure-core read for proxies and the CA bundle
(in `requests`' order). Read here once per session rather than by `requests` at every call
(shared/http/session.py)."""


def proxies_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment names a proxy (either case, as `requests` reads them)."""
    environ = os.environ if environ is None else environ
    return any(environ.get(name) or environ.get(name.lower()) for name in PROXY_SETTINGS)


def ca_bundle(environ: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle the environment names, if any."""
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in CA_BUNDLE_SETTINGS if environ.get(name)), None)
