"""The repository stands on its own: nothing it ships points at files outside it, and its docs' links resolve."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared|shared/docs|/work/shared")
# The EEN conformance test may read EEN's OpenAPI specs from beside the repository (they carry no licence).
ALLOWED = re.compile(r"\.\./shared/een-openapi")
TEXT_SUFFIXES = {".py", ".md", ".json", ".bicep", ".yaml", ".yml", ".txt", ".toml", ".cfg", ""}


def shipped_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout  # noqa: S607
    names = [n for n in out.decode().split("\0") if n and not n.startswith("node_modules/")]
    return [ROOT / n for n in names if (ROOT / n).is_file() and Path(n).suffix in TEXT_SUFFIXES]


def test_nothing_points_outside_the_repository():
    found = []
    for path in shipped_text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(ALLOWED.sub("", line)):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_relative_links_in_the_docs_resolve():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} → {target}")
    assert not broken, broken
