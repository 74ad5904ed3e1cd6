"""Cut Rhombus's OpenAPI document down to the endpoints the agent uses (and the schemas they reference).

    python -m tools.rhombus_openapi_subset <openapi.json> [<commit>]

Reads the full document (RhombusSystems/rhombus-node-mcp, `assets/openapi.json`, MIT licence) and
writes devstack/vms_sim/specs/rhombus-openapi-subset.json, which the tests validate the Rhombus adapter
and simulator against. Run it again to follow a newer version of the document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PATHS = (
    "/api/camera/getMinimalCameraStateList",
    "/api/camera/getPresenceWindows",
    "/api/video/getExactFrameUri",
    "/api/video/spliceV3",
    "/api/event/getClipWithProgress",
    "/api/event/deleteSavedClip",
    "/api/event/getClipsWithProgress",
)
OUTPUT = Path(__file__).resolve().parent.parent / "devstack" / "vms_sim" / "specs" / "rhombus-openapi-subset.json"
SOURCE = "https://github.com/RhombusSystems/rhombus-node-mcp/blob/{commit}/assets/openapi.json"


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    return set()


def subset(document: dict[str, Any], commit: str) -> dict[str, Any]:
    paths = {path: document["paths"][path] for path in PATHS}
    schemas = document["components"]["schemas"]
    wanted, pending = set(), _references(paths)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending |= _references(schemas[name])
    return {
        "openapi": document["openapi"],
        "info": {
            **document["info"],
            "x-subset-of": SOURCE.format(commit=commit),
            "x-licence": "MIT, see rhombus-openapi-subset.LICENSE",
        },
        "security": document.get("security", []),
        "paths": paths,
        "components": {
            "schemas": {name: schemas[name] for name in sorted(wanted)},
            "securitySchemes": document["components"].get("securitySchemes", {}),
        },
    }


def main(argv: list[str]) -> int:
    if not 2 <= len(argv) <= 3:
        print(__doc__, file=sys.stderr)
        return 2
    document = json.loads(Path(argv[1]).read_text())
    OUTPUT.write_text(json.dumps(subset(document, argv[2] if len(argv) == 3 else "main"), indent=2) + "\n")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
