"""The Makefile explains itself: plain `make` prints `make help`, which lists every target with one line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _phony_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.M)
    assert phony, "the Makefile declares its targets .PHONY"
    return set(phony[1].split())


def test_plain_make_prints_the_help_and_sets_nothing_up():
    plain = subprocess.run(["make", "-s"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)  # noqa: S607
    helped = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)  # noqa: S607
    assert plain.stdout == helped.stdout
    listed = {line.split()[1] for line in plain.stdout.splitlines() if line.strip().startswith("make ")}
    assert listed == _phony_targets(), "every .PHONY target has a `## description` line above it"
    for line in plain.stdout.splitlines():
        assert len(line.split(maxsplit=2)) == 3, f"a target without a description: {line!r}"
