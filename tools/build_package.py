"""Build the function app's deployment zip exactly as it is deployed: `python -m tools.build_package`.

The package holds the function folders (each root folder with a `function.json`), `host.json`,
`requirements.txt` and `shared/`, and nothing else: no tests, local stack, benchmarks, infra, docs,
virtual environments, local settings, keys or byte code. `.funcignore` says the same for
`func azure functionapp publish` (a test keeps the two equal). Remote build installs requirements.txt.

`--stage DIR` writes the same files into a directory instead, with `.funcignore` beside them: azd's
prepackage hook (azure.yaml) stages the package there and azd zips that directory, honouring the
`.funcignore` it finds in it. So `azd up`, `make package` and `func publish` deploy the same files, and a
stray file in the working tree (a parameters file, a connection file) never rides along with azd.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOT_FILES = ("host.json", "requirements.txt")
PACKAGES = ("shared",)
# Never packaged, wherever they appear under an included folder.
EXCLUDED_DIR_NAMES = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".pem", ".key", ".pfx", ".p12")
EXCLUDED_NAMES = frozenset({"local.settings.json", ".env", ".DS_Store"})
# A fixed timestamp keeps the zip byte-identical between builds of the same tree.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def function_folders(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/function.json"))


def _walk(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            if path.name not in EXCLUDED_DIR_NAMES and not path.is_symlink():
                yield from _walk(path)
        elif path.is_file() and not _excluded_file(path.name):
            yield path


def _excluded_file(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def package_files(root: Path = ROOT) -> list[str]:
    """Paths (relative, POSIX) of every file the package holds, sorted."""
    files: list[str] = []
    for name in ROOT_FILES:
        if not (root / name).is_file():
            raise FileNotFoundError(f"{name} is missing at {root}")
        files.append(name)
    folders = [*function_folders(root), *PACKAGES]
    if not function_folders(root):
        raise FileNotFoundError(f"no function folders (*/function.json) under {root}")
    for folder in folders:
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"{folder}/ is missing at {root}")
        files.extend(p.relative_to(root).as_posix() for p in _walk(root / folder))
    return sorted(files)


def build(root: Path = ROOT, output: Path | None = None) -> Path:
    output = output or root / "dist" / "functionapp.zip"
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in package_files(root):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, (root / name).read_bytes())
    return output


def stage(root: Path, target: Path) -> Path:
    """The package's files copied into `target` (emptied first), plus `.funcignore` for azd to honour."""
    files = package_files(root)
    dist = (root / "dist").resolve()
    if target.resolve() == dist or not target.resolve().is_relative_to(dist):
        raise ValueError(f"the staging directory is emptied first, so it must be a folder inside {dist}: {target}")
    if target.exists():
        shutil.rmtree(target)
    for name in (*files, ".funcignore"):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, destination)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="zip to write (default: dist/functionapp.zip)")
    parser.add_argument("--stage", type=Path, default=None, help="write the files into this directory under dist/")
    args = parser.parse_args(argv)
    if args.stage is not None:
        target = stage(ROOT, args.stage if args.stage.is_absolute() else ROOT / args.stage)
        print(f"staged {len(package_files(ROOT))} files in {target}")
        return 0
    output = build(ROOT, args.output)
    with zipfile.ZipFile(output) as archive:
        count = len(archive.namelist())
    print(f"wrote {output} ({count} files, {output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
