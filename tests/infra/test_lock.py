"""The runtime lock (requirements.txt) is complete, hashed, generated from requirements.in as it is now, and
what this environment runs. Offline: regenerating needs PyPI, so staleness is told by the fingerprint of
requirements.in that `make lock` writes into the lock (tools/lock.py)."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from tools.lock import FINGERPRINT, LOCK, SOURCE, header, source_fingerprint

ROOT = Path(__file__).resolve().parents[2]
STALE = "requirements.in changed since requirements.txt was generated: run `make lock` and commit requirements.txt"
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) for every package in the lock."""
    packages: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for line in LOCK.read_text().splitlines():
        entry = ENTRY.match(line)
        if entry:
            current = _canonical(entry[1])
            assert current not in packages, f"{current} is locked twice"
            packages[current] = (entry[2], [])
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            packages[current][1].append(line.strip().split(":", 1)[1].rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"requirements.txt holds something that is not a locked package: {line!r}")
    return packages


def direct() -> dict[str, str]:
    """name → pinned version, from requirements.in."""
    pins = {}
    for line in SOURCE.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        entry = ENTRY.match(requirement)
        assert entry, f"requirements.in pins every package with ==: {line!r}"
        pins[_canonical(entry[1])] = entry[2]
    return pins


def test_the_lock_was_generated_from_requirements_in_as_it_is():
    first_lines = LOCK.read_text().splitlines()[:6]
    recorded = next((line for line in first_lines if line.startswith(FINGERPRINT)), None)
    assert recorded is not None, f"requirements.txt has no fingerprint line: {STALE}"
    assert recorded == FINGERPRINT + source_fingerprint(SOURCE.read_text()), STALE
    assert LOCK.read_text().startswith(header(SOURCE.read_text())), STALE


def test_every_locked_package_is_pinned_with_hashes():
    packages = locked()
    assert len(packages) > len(direct()), "the lock holds the transitive dependencies too"
    for name, (version, hashes) in packages.items():
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def test_every_direct_dependency_is_locked_at_its_pinned_version():
    packages = locked()
    for name, version in direct().items():
        assert name in packages, f"{name} is in requirements.in but not in the lock: {STALE}"
        assert packages[name][0] == version, f"{name}: {STALE}"


def _packages_of_each_distribution() -> dict[str, str]:
    """Dotted package (or top-level module) → the installed distribution that provides it."""
    owners: dict[str, str] = {}
    for distribution in metadata.distributions():
        for file in distribution.files or ():
            parts = file.parts
            if parts[-1] == "__init__.py" and ".." not in parts:
                owners[".".join(parts[:-1])] = _canonical(distribution.metadata["Name"])
            elif len(parts) == 1 and parts[0].endswith((".py", ".so")):
                owners[parts[0].split(".")[0]] = _canonical(distribution.metadata["Name"])
    return owners


def _imports_of_the_app() -> set[str]:
    names = set()
    for folder in ("shared", "poll_jobs", "process_job", "renew_locks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
    return names


def test_every_distribution_the_app_imports_is_pinned_in_requirements_in():
    # A package imported by the app's code but reaching it only as another package's dependency could change
    # under it with that package: each one is pinned on purpose (urllib3 and azure-core were not).
    owners = _packages_of_each_distribution()
    first_party = {"shared", "poll_jobs", "process_job", "renew_locks"}
    needed = set()
    for name in _imports_of_the_app():
        top = name.split(".")[0]
        if top in first_party or top in sys.stdlib_module_names:
            continue
        parts = name.split(".")
        owner = next(
            (owners[".".join(parts[:n])] for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in owners), None
        )
        assert owner, f"no installed distribution provides {name}"
        needed.add(owner)
    assert {"azure-core", "urllib3", "requests"} <= needed, "the scan finds the app's imports"
    missing = needed - set(direct())
    assert not missing, f"imported by the app but not pinned in requirements.in: {sorted(missing)}"


def test_this_environment_runs_exactly_the_locked_versions():
    # `make setup` installs the lock with --require-hashes --no-deps before the development tools: a dev
    # tool that moved a runtime package to another version would show here.
    wrong = {}
    for name, (version, _) in locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong[name] = f"locked {version}, installed {installed}"
    assert not wrong, f"the venv differs from requirements.txt (run `make setup` after `make clean`): {wrong}"


def test_setup_installs_the_lock_and_make_lock_regenerates_it():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements.txt" in makefile
    assert re.search(r"^lock: .*\n\t\$\(PY\) -m tools\.lock$", makefile, re.M)
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" not in dev, "pip cannot mix hashed and unhashed requirements in one install"
    assert re.search(r"^uv==\S+$", dev, re.M), "the lock tool is pinned"
    assert "/requirements.in" in (ROOT / ".funcignore").read_text().splitlines(), "requirements.in is not deployed"
