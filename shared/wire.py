"""Pydantic building blocks for JSON that enters from outside (Registry, connection file, VMS, queue)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator


def _as_utc(value: datetime) -> datetime:
    """Timestamps are UTC on the wire; a missing offset is read as UTC rather than local time."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def format_utc(value: datetime) -> str:
    """ISO-8601 UTC with a `Z`, second precision unless there are fractions: `2026-11-24T05:27:23Z`."""
    value = _as_utc(value)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


class CaseInsensitiveModel(BaseModel):
    """Reads PascalCase, camelCase or any other casing of its aliases, and ignores unknown fields."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_by_name=True, validate_by_alias=True)
    _lookup_cache: ClassVar[dict[type, dict[str, str]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _match_names_case_insensitively(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lookup = cls._lookup_cache.get(cls)
        if lookup is None:
            lookup = {}
            for name, field in cls.model_fields.items():
                # Validate by alias, so that error locations name the field as it is on the wire.
                lookup[name.lower()] = field.alias or name
                if field.alias:
                    lookup[field.alias.lower()] = field.alias
            cls._lookup_cache[cls] = lookup
        matched: dict[str, Any] = {}
        for key, value in data.items():
            target = lookup.get(str(key).lower())
            if target is not None:
                matched[target] = value
        return matched


def describe_validation_error(exc: ValidationError, *, source: str) -> str:
    """Field paths and what is wrong, never the offending values (they may be secrets)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        problems.append(f"{where}: {error['msg']}")
    return f"{source}: " + "; ".join(problems[:10])
