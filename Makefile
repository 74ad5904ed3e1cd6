# Every target sets itself up on a fresh machine (Python 3.11, Node 20): venv, pip packages, Azurite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov (Bicep security scan, ~300 MB) in its own venv, kept out of the app's and the dev requirements.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: help setup demo drill test lint format bench stack agent ops package lock clean
.DEFAULT_GOAL := help

## This list (plain `make` prints it too). Every target sets itself up on a fresh machine.
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-z-]*:/{if(doc!=""){split($$0,t,":"); printf "  make %-8s %s\n", t[1], doc}; doc=""; next} {doc=""}' $(MAKEFILE_LIST)

## The venv (.venv, the pinned packages) and Azurite (npm ci); the other targets run it when needed.
setup: $(PY_STAMP) $(NODE_STAMP)

# The runtime lock first, exactly (hashes checked, nothing resolved), then the development tools on top.
$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(INFRA_STAMP): requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job on the local stack: Azurite + Registry simulator + the agent, end to end.
demo: setup
	$(PY) -m devstack demo $(ARGS)

## Resilience drill: hosts killed 20+ times while real work is in flight, and ten named scenarios (docs/drill.md); JSON verdict, non-zero on a miss.
drill: setup
	$(PY) -m devstack drill $(ARGS)

## Lint (ruff, mypy) and the whole test suite (unit + integration against Azurite and the simulators, infra checks).
test: setup $(INFRA_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

## Lint alone: ruff check, ruff format --check, mypy.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## Let ruff fix what it can and format the code.
format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## The same agent against real Clearance and a real VMS: make agent SETTINGS=local.settings.json
agent: setup
	$(PY) -m devstack agent --settings $(SETTINGS) $(ARGS)

## What the agent is doing, from its tables: make ops ARGS="status" | "show JOB" | "release JOB" | "check"
## (shared/ops/); options before or after the command: ARGS="--settings local.settings.json status --json"
## Python only: no Node (Azurite is not needed to read a running agent's or a real account's tables).
ops: $(PY_STAMP)
	$(PY) -m devstack.ops $(ARGS)

## Throughput and memory, each figure next to its baseline; writes .bench/results.json.
bench: setup
	$(PY) -m bench $(ARGS)

## The local stack in the foreground (Ctrl-C stops it); state in .devstack/.
stack: setup
	$(PY) -m devstack up $(ARGS)

## The deployment zip, exactly as deployed: dist/functionapp.zip (docs/deployment.md).
package: $(PY_STAMP)
	$(PY) -m tools.build_package

## Regenerate requirements.txt (every runtime package, pinned, with hashes) from requirements.in; needs PyPI.
lock: $(PY_STAMP)
	$(PY) -m tools.lock

## Remove everything generated: venvs, node_modules, dist, the local stack's and the bench's state.
clean:
	rm -rf $(VENV) $(INFRA_VENV) dist node_modules .devstack .bench .pytest_cache .ruff_cache .mypy_cache
