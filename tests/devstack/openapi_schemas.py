"""Checking JSON bodies against an OpenAPI 3.0 document: schema validity, and no undeclared members.

The vendors' schemas allow extra properties, so a misspelt field would pass plain validation; every
member a body carries must also be declared by the schema (maps given by `additionalProperties` are
checked value by value).
"""

from __future__ import annotations

from typing import Any


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, list[Any]] | None:
    """Declared properties (name -> candidate schemas) across allOf/oneOf/anyOf; None for a free-form object."""
    schema = _resolve(spec, schema)
    found: dict[str, list[Any]] = {name: [sub] for name, sub in schema.get("properties", {}).items()}
    free = not found
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            nested = _properties(spec, part)
            if nested is not None:
                free = False
                for name, candidates in nested.items():
                    found.setdefault(name, []).extend(candidates)
    return None if free else found


def _discriminated(spec: dict[str, Any], schema: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    """The oneOf branch a discriminator picks for this instance (the schema itself if none applies)."""
    discriminator = schema.get("discriminator", {})
    target = discriminator.get("mapping", {}).get(instance.get(discriminator.get("propertyName", "")))
    return _resolve(spec, {"$ref": target}) if target else schema


def undeclared(spec: dict[str, Any], schema: dict[str, Any], instance: Any, path: str = "$") -> list[str]:
    """Paths of object members the schema does not declare."""
    schema = _resolve(spec, schema)
    if isinstance(instance, list):
        items = schema.get("items")
        for part in schema.get("allOf", []):
            items = items or _resolve(spec, part).get("items")
        return [p for i, item in enumerate(instance) for p in undeclared(spec, items or {}, item, f"{path}[{i}]")]
    if not isinstance(instance, dict):
        return []
    values = schema.get("additionalProperties")
    if isinstance(values, dict) and not schema.get("properties"):
        return [p for name, value in instance.items() for p in undeclared(spec, values, value, f"{path}.{name}")]
    declared = _properties(spec, _discriminated(spec, schema, instance))
    if declared is None:
        return []
    problems = [f"{path}.{name}" for name in instance if name not in declared]
    for name, value in instance.items():
        found: list[list[str]] = [
            undeclared(spec, candidate, value, f"{path}.{name}") for candidate in declared.get(name, [])
        ]
        if found and all(found):
            shortest: list[str] = min(found, key=len)
            problems += shortest
    return problems


def assert_valid(
    spec: dict[str, Any], schema: dict[str, Any], instance: Any, what: str, *, request: bool = False
) -> None:
    """Asserts that `instance` is valid (a request body: no read-only members) and declares every member."""
    from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

    validator = OAS30WriteValidator if request else OAS30ReadValidator
    document = {**schema, "components": spec["components"]}
    errors = sorted(validator(document, format_checker=oas30_format_checker).iter_errors(instance), key=str)
    assert not errors, f"{what}: " + "; ".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    extra = undeclared(spec, schema, instance)
    assert not extra, f"{what}: undeclared members {extra}"
