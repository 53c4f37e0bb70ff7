# artdag — the one entry point. `make help` lists the targets.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARTDAG_HOME ?= $(HOME)/.artdag

.DEFAULT_GOAL := help
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
.PHONY: help install run test lint format unit e2e bench clean ipfs-node chromium bubblewrap k8s-tools k8s-manifests k8s-bus-values k8s-check asyncapi \
	image container-test

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "artdag needs Python >= 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install artdag with its dev tools

run: $(STAMP) ## start the whole embedded stack with the demo recipe and media (Ctrl-C stops it)
	ARTDAG_HOME=$(ARTDAG_HOME) $(BIN)/artdag up --demo

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services tests

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Most of the suite waits on stacks of processes (starting, rendering, recovering), so two workers
# (pytest-xdist, one file per worker at a time) take about two thirds of the time one does on 2 cores.
TEST_WORKERS ?= 2

test: lint ipfs-node chromium bubblewrap k8s-check ## lint, the Kubernetes checks, then the whole test suite (unit, integration, end to end, browser)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The chart's checkers live in a virtualenv of their own: checkov pins many packages, and the
# Helm SDK (Helm 4 as a library: no helm binary) is a large wheel the services never need.
$(TOOLS_STAMP): deploy/k8s/requirements-tools.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "artdag needs Python >= 3.11"; exit 1; }
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r deploy/k8s/requirements-tools.txt
	touch $(TOOLS_STAMP)

k8s-tools: $(TOOLS_STAMP) ## install the chart checkers (Helm SDK, kubernetes-validate, checkov, hadolint) in .venv-tools

k8s-manifests: $(TOOLS_STAMP) ## render deploy/k8s/base (Kustomize) from the Helm chart
	$(TOOLS)/bin/python deploy/k8s/k8stool.py manifests

k8s-bus-values: $(STAMP) ## write the bus's users, grants and password variables (bus_access.py) into the chart's values.yaml
	$(BIN)/python deploy/k8s/bus_values.py

k8s-check: $(TOOLS_STAMP) ## offline: chart (default + production values) and manifests vs Kubernetes schemas, checkov, hadolint
	$(TOOLS)/bin/python deploy/k8s/k8stool.py check

# Containers without a registry: podman (installed with apt when missing) builds a Debian base with
# mmdebstrap, a Python stand-in on it, then the Dockerfile as it is. See deploy/container/.
image: $(STAMP) ## build the images compose.yaml runs with podman, no registry needed (artdag, NATS, PostgreSQL)
	bash deploy/container/images.sh

container-test: $(STAMP) ## make image, start compose.yaml on podman, render beat-sync through it, compare with artdag up
	$(BIN)/python deploy/container/container_test.py

asyncapi: $(STAMP) ## write docs/asyncapi.json (every NATS subject and its payload schema)
	$(BIN)/python -m artdag_dev.asyncapi docs/asyncapi.json

# A real IPFS node for the IPFS content-store tests: js-ipfs from the npm registry (run
# offline in its own network namespace by the tests). Without Node.js those tests skip.
ipfs-node: $(STAMP) ## install the offline IPFS node the tests use (needs Node.js and npm)
	@$(BIN)/python -c 'from artdag_dev.testing import ensure_jsipfs; r = ensure_jsipfs(); print("ipfs-node:", r or "ready")' \
	  || echo "ipfs-node: install failed; the IPFS store tests will skip"

# The browser tests drive Debian's chromium with Playwright (never a downloaded browser).
chromium: ## install Debian's chromium for the browser tests when it is missing (needs root)
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "chromium: install failed; the browser tests will skip"

# Python effects run under Debian's bubblewrap; their sandbox tests fail in CI without it.
bubblewrap: ## install Debian's bubblewrap (bwrap) for the Python effect sandbox when it is missing (needs root)
	@test -x /usr/bin/bwrap || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } \
	  || echo "bubblewrap: install failed; the Python effect sandbox tests will skip (and fail in CI)"

unit: $(STAMP) ## only the fast unit tests
	$(BIN)/python -m pytest tests/unit

e2e: $(STAMP) ## only the end-to-end tests (starts the stack)
	$(BIN)/python -m pytest tests/e2e

clean: ## remove the virtualenv and caches (not ARTDAG_HOME)
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
