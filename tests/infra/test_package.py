"""The deployment zip (tools/build_package.py) holds what Azure runs and nothing else; .funcignore agrees."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest

from tools.build_package import build, function_folders

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {"poll_jobs", "process_job", "renew_locks"}
ALLOWED_TOP = {*FUNCTIONS, "shared", "host.json", "requirements.txt"}
FORBIDDEN_PARTS = {"tests", "devstack", "bench", "infra", "docs", "node_modules", ".venv", ".venv-infra", "__pycache__"}


def tracked_files(root: Path) -> set[str]:
    """Files git knows or would add (tracked + untracked, not ignored): what a publish would see."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],  # noqa: S607
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return {name for name in out.split("\0") if name and (root / name).is_file()}


def funcignored(path: str, patterns: list[str]) -> bool:
    """A .funcignore (gitignore syntax) match: enough of it for the patterns this repo uses."""
    parts = path.split("/")
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        pat = pattern.strip("/")
        anchored = pattern.startswith("/")
        # candidate prefixes: directories (dir_only) or any path prefix, anchored at the root or anywhere
        candidates = range(len(parts) - 1) if dir_only else range(len(parts))
        for end in candidates:
            starts = [0] if anchored else range(end + 1)
            for start in starts:
                if "/".join(parts[start : end + 1]) == pat or (
                    "/" not in pat and start == end and fnmatch.fnmatchcase(parts[end], pat)
                ):
                    return True
    return False


def funcignore_patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> set[str]:
    output = build(ROOT, tmp_path_factory.mktemp("dist") / "functionapp.zip")
    with zipfile.ZipFile(output) as archive:
        assert archive.testzip() is None
        return set(archive.namelist())


def test_package_holds_the_functions_host_json_requirements_and_shared(package):
    assert set(function_folders(ROOT)) == FUNCTIONS
    for function in FUNCTIONS:
        assert {f"{function}/function.json", f"{function}/__init__.py"} <= package
    assert {"host.json", "requirements.txt", "shared/__init__.py", "shared/settings.py"} <= package
    shared_sources = {p for p in tracked_files(ROOT) if p.startswith("shared/") and p.endswith(".py")}
    assert shared_sources and shared_sources <= package


def test_package_holds_nothing_else(package):
    for name in package:
        parts = name.split("/")
        assert parts[0] in ALLOWED_TOP, name
        assert not FORBIDDEN_PARTS & set(parts), name
        assert not name.endswith((".pyc", ".pem", ".key")), name
        assert parts[-1] not in {"local.settings.json", "local.settings.example.json", ".env"}, name


def test_funcignore_agrees_with_the_package(package):
    patterns = funcignore_patterns()
    published = {p for p in tracked_files(ROOT) if not funcignored(p, patterns)}
    assert published == package, (
        f"only in the zip: {sorted(package - published)}; only in a func publish: {sorted(published - package)}"
    )


def test_coverage_data_left_by_a_coverage_run_is_neither_published_nor_seen_by_git(package):
    leftovers = [ROOT / f".coverage.{uuid.uuid4().hex}", ROOT / "htmlcov" / f"{uuid.uuid4().hex}.html"]
    created = [path for path in leftovers if not path.exists()]
    made_htmlcov = not (ROOT / "htmlcov").exists()
    try:
        for path in created:
            path.parent.mkdir(exist_ok=True)
            path.write_text("coverage data")
        seen = tracked_files(ROOT)
        assert not {path.relative_to(ROOT).as_posix() for path in created} & seen  # .gitignore
        for path in created:
            assert funcignored(path.relative_to(ROOT).as_posix(), funcignore_patterns())  # .funcignore
        assert {p for p in seen if not funcignored(p, funcignore_patterns())} == package
    finally:
        for path in created:
            path.unlink(missing_ok=True)
        if made_htmlcov:
            shutil.rmtree(ROOT / "htmlcov", ignore_errors=True)


def test_stray_secrets_and_byte_code_stay_out(tmp_path):
    # A copy of the tree with the things a careless deploy would pick up planted in it.
    tree = tmp_path / "tree"
    for name in ("host.json", "requirements.txt"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tree / name)
    for folder in (*FUNCTIONS, "shared"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    planted = [
        "local.settings.json",
        "shared/local.settings.json",
        "shared/agent.pem",
        "shared/__pycache__/settings.cpython-311.pyc",
        "poll_jobs/.env",
        "tests/test_x.py",
        "devstack/x.py",
        "infra/bicep/main.bicep",
        ".venv/lib/x.py",
        ".coverage",
        ".coverage.ci-host.1234.567890",
        "coverage.xml",
    ]
    for name in planted:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("planted")
    with zipfile.ZipFile(build(tree, tmp_path / "out.zip")) as archive:
        names = set(archive.namelist())
    assert not names & set(planted)
    assert "shared/settings.py" in names
    for name in planted:
        assert funcignored(name, funcignore_patterns()), f".funcignore lets {name} through"


def test_the_build_is_reproducible(tmp_path):
    first = build(ROOT, tmp_path / "a.zip").read_bytes()
    second = build(ROOT, tmp_path / "b.zip").read_bytes()
    assert first == second
