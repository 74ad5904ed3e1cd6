"""Parsed Bicep templates for the infra tests (pycep-parser: offline, no Bicep CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
BICEP_DIR = ROOT / "infra" / "bicep"
MODULES_DIR = BICEP_DIR / "modules"


def bicep_files() -> list[Path]:
    return sorted(BICEP_DIR.rglob("*.bicep"))


@cache
def parse(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], BicepParser().parse(file_path=path))


def module(name: str) -> dict[str, Any]:
    return parse(MODULES_DIR / f"{name}.bicep")


def main() -> dict[str, Any]:
    return parse(BICEP_DIR / "main.bicep")


def config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body; a conditional resource (`= if (...) {}`) nests it one level deeper."""
    body = resource["config"]
    return body["config"] if "condition" in body else body


def resources_of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["resources"].items() if r["type"] == type_ and not r["existing"]}


def strings(node: Any) -> Iterator[str]:
    """Every string leaf under a parsed expression (literals and identifiers alike)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def app_settings() -> dict[str, Any]:
    site = config(module("app")["resources"]["app"])
    settings = site["properties"]["siteConfig"]["appSettings"]
    names = [s["name"] for s in settings]
    assert len(names) == len(set(names)), "an app setting is listed twice"
    return {s["name"]: s["value"] for s in settings}
