"""azure.yaml (the Azure Developer CLI project): its structure against azd's schema, the templates and app it
names, its parameters file, and that `azd up` publishes exactly the files `make package` publishes.

azd itself cannot run here (it needs Azure). Its published JSON schema (schemas/v1.0/azure.yaml.json in the
Azure/azure-dev repository) is not vendored: AZD_SCHEMA below restates the parts of it this file uses.
How azd packages a Python function app, from its source (pkg/project): Python has no build step, so the
package source is the service's `project` folder joined with `dist`; the zip skips any `.azure` folder,
the ignore file itself and `local.settings.json`, then applies the `.funcignore` found in that folder (without
one: Python virtual environments and `__pycache__`). Service hooks run with the service folder as working
directory, `prepackage` before the package is made.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.infra.bicep_model import BICEP_DIR, ROOT, main, parse
from tests.infra.test_package import funcignored
from tools.build_package import build, package_files, stage

AZURE_YAML = ROOT / "azure.yaml"

_HOOK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "shell": {"enum": ["sh", "pwsh"]},
        "run": {"type": "string"},
        "continueOnError": {"type": "boolean"},
        "interactive": {"type": "boolean"},
        "windows": {"$ref": "#/$defs/hook"},
        "posix": {"$ref": "#/$defs/hook"},
    },
    "allOf": [
        # Both OS variants given: nothing else at this level.
        {
            "if": {"required": ["windows", "posix"]},
            "then": {"properties": {"run": False, "shell": False, "interactive": False, "continueOnError": False}},
        },
        # A shell (or any other option) needs something to run.
        {"if": {"anyOf": [{"required": ["shell"]}, {"required": ["interactive"]}]}, "then": {"required": ["run"]}},
    ],
}
_SERVICE_HOOKS = ("restore", "build", "package", "publish", "deploy")
AZD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "$defs": {"hook": _HOOK},
    "properties": {
        "name": {"type": "string", "minLength": 2, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "resourceGroup": {"type": "string", "minLength": 3, "maxLength": 64},
        "metadata": {"type": "object", "properties": {"template": {"type": "string"}}},
        "infra": {
            "type": "object",
            "properties": {
                "provider": {"type": "string", "pattern": "^[a-z0-9.]+$"},
                "path": {"type": "string"},
                "module": {"type": "string"},
            },
        },
        "services": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["host"],
                "properties": {
                    "project": {"type": "string"},
                    "host": {"type": "string"},
                    "language": {"type": "string"},
                    "dist": {"type": "string"},
                    "remoteBuild": {"type": "boolean"},
                    "hooks": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            f"{when}{event}": {"$ref": "#/$defs/hook"}
                            for event in _SERVICE_HOOKS
                            for when in ("pre", "post")
                        },
                    },
                },
            },
        },
        "hooks": {"type": "object"},
        "pipeline": {"type": "object"},
        "requiredVersions": {"type": "object"},
        "state": {"type": "object"},
        "platform": {"type": "object"},
        "workflows": {"type": "object"},
        "resources": {"type": "object"},
        "cloud": {"type": "object"},
    },
}
SUBSTITUTION = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(?:=([^}]*))?\}$")


def project() -> dict:
    return yaml.safe_load(AZURE_YAML.read_text())


def azd_zip_entries(folder: Path) -> set[str]:
    """The files azd's function-app packaging zips from `folder` (see the module docstring)."""
    ignore_file = folder / ".funcignore"
    patterns = []
    if ignore_file.is_file():
        lines = ignore_file.read_text(encoding="utf-8-sig").splitlines()
        patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    entries = set()
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        dirs[:] = [
            d
            for d in dirs
            if d != ".azure" and (patterns or not ((here / d / "pyvenv.cfg").exists() or d.lower() == "__pycache__"))
        ]
        for name in files:
            relative = (here / name).relative_to(folder).as_posix()
            if name in (".funcignore", "local.settings.json") or (patterns and funcignored(relative, patterns)):
                continue
            entries.add(relative)
    return entries


def test_azure_yaml_has_the_structure_of_azds_schema():
    jsonschema.Draft201909Validator.check_schema(AZD_SCHEMA)
    jsonschema.Draft201909Validator(AZD_SCHEMA).validate(project())


@pytest.mark.parametrize(
    "break_it",
    [
        lambda p: p.update(name="Clearance_Agent"),
        lambda p: p["services"]["agent"].pop("host"),
        lambda p: p["services"]["agent"]["hooks"]["prepackage"].update(run="echo"),
        lambda p: p["services"]["agent"]["hooks"]["prepackage"]["posix"].__setitem__("shell", "bash"),
        lambda p: p["services"]["agent"]["hooks"].update(beforepackage={"run": "x"}),
    ],
    ids=["name-pattern", "host-required", "run-beside-os-variants", "shell-enum", "unknown-hook"],
)
def test_the_schema_check_rejects_what_azd_rejects(break_it):
    broken = copy.deepcopy(project())
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(AZD_SCHEMA).validate(broken)


def test_azure_yaml_names_the_templates_and_the_function_app():
    doc = project()
    assert doc["infra"] == {"provider": "bicep", "path": "infra/bicep", "module": "main"}
    assert (ROOT / doc["infra"]["path"] / f"{doc['infra']['module']}.bicep").is_file()
    assert (ROOT / doc["infra"]["path"] / f"{doc['infra']['module']}.parameters.json").is_file()
    assert main()["globals"]["scope"]["value"] == "resourceGroup"
    assert list(doc["services"]) == ["agent"]
    service = doc["services"]["agent"]
    assert service["host"] == "function" and service["language"] == "python" and service["project"] == "."
    assert service["remoteBuild"] is True, "Azure installs requirements.txt; the package holds no packages"
    # azd finds the app by its azd-service-name tag, which the template sets from the service name.
    assert main()["modules"]["app"]["config"]["params"]["serviceName"] == "agent"


def test_the_prepackage_hook_stages_the_folder_azd_zips():
    service = project()["services"]["agent"]
    hook = service["hooks"]["prepackage"]
    assert hook["posix"] == {"shell": "sh", "run": f"python3 -m tools.build_package --stage {service['dist']}"}
    assert hook["windows"] == {"shell": "pwsh", "run": f"python -m tools.build_package --stage {service['dist']}"}
    assert service["dist"].startswith("dist/"), "inside dist/: gitignored, .funcignored, emptied by the hook"


def test_azd_publishes_exactly_what_make_package_publishes(tmp_path):
    service = project()["services"]["agent"]
    # Run the hook as azd would (sh, in the service folder), then package the folder as azd would.
    subprocess.run(["sh", "-c", service["hooks"]["prepackage"]["posix"]["run"]], cwd=ROOT, check=True)  # noqa: S607
    staged = ROOT / service["project"] / service["dist"]
    published = azd_zip_entries(staged)
    assert published == set(package_files(ROOT))
    with zipfile.ZipFile(build(ROOT, tmp_path / "functionapp.zip")) as archive:
        for name in published:
            assert archive.read(name) == (staged / name).read_bytes(), name


def test_stray_files_in_the_working_tree_never_reach_azds_package(tmp_path):
    tree = tmp_path / "tree"
    for name in ("host.json", "requirements.txt", ".funcignore"):
        tree.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tree / name)
    for folder in ("poll_jobs", "process_job", "renew_locks", "shared"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    planted = [
        "clearance-connection-file.json",
        "my.parameters.json",
        "een-client-secret.txt",
        "shared/local.settings.json",
        "shared/agent.pem",
        "shared/__pycache__/settings.cpython-311.pyc",
        ".venv/pyvenv.cfg",
        "tree_env/pyvenv.cfg",
        ".azure/prod/.env",
    ]
    for name in planted:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("planted")
    published = azd_zip_entries(stage(tree, tree / "dist" / "functionapp"))
    assert published == set(package_files(tree))
    assert not published & set(planted)
    with pytest.raises(ValueError, match="inside"):
        stage(tree, tree)


def test_the_azd_parameters_file_maps_environment_values_to_parameters():
    doc = (BICEP_DIR / "main.parameters.json").read_text()
    parameters = yaml.safe_load(doc)["parameters"]
    declared = main()["parameters"]
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    secure = {p for p, spec in declared.items() if {"type": "secure"} in spec["decorators"]}
    assert not secure & set(parameters), "secrets never go through azd's plain-text .env"
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    for name, entry in parameters.items():
        match = SUBSTITUTION.match(entry["value"])
        assert match, f"{name}: azd substitutes ${{VAR}} or ${{VAR=default}}: {entry['value']!r}"
        if match[2] is not None:
            # An unset variable keeps the template's own default (booleans as JSON writes them).
            default = declared[name]["default"]
            assert match[2] == (str(default).lower() if isinstance(default, bool) else str(default)), name


def test_the_cli_example_parameters_file_has_no_secret():
    doc = yaml.safe_load((BICEP_DIR / "example.parameters.json").read_text())
    params = parse(BICEP_DIR / "main.bicep")["parameters"]
    assert set(doc["parameters"]) <= set(params), set(doc["parameters"]) - set(params)
    required = {p for p, spec in params.items() if spec.get("default") is None}
    assert required <= set(doc["parameters"])
    secure = {p for p, spec in params.items() if {"type": "secure"} in spec["decorators"]}
    assert secure and not secure & set(doc["parameters"])
    assert not any("${" in str(entry["value"]) for entry in doc["parameters"].values())
