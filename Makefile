# Every target sets itself up on a fresh machine (Python 3.11, Node 20): venv, pip packages, Azurite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup demo test lint format bench stack agent clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job on the local stack: Azurite + Registry simulator + the agent, end to end.
demo: setup
	$(PY) -m devstack demo $(ARGS)

## Lint and the whole test suite (unit + integration against Azurite and the simulators).
test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest $(ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## The same agent against real Clearance and a real VMS: make agent SETTINGS=local.settings.json
agent: setup
	$(PY) -m devstack agent --settings $(SETTINGS)

## Throughput and memory, each figure next to its baseline; writes .bench/results.json.
bench: setup
	$(PY) -m bench $(ARGS)

## The local stack in the foreground (Ctrl-C stops it); state in .devstack/.
stack: setup
	$(PY) -m devstack up $(ARGS)

clean:
	rm -rf $(VENV) node_modules .devstack .bench .pytest_cache .ruff_cache
