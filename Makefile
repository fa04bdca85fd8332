# attestation-broker — `make serve` and `make test` work on a fresh machine (Python 3.11, pip, Node/npm, apt).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: setup system-deps node-deps serve demo test lint typecheck unit smoke bench fuzz clean

setup: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,aws,gcp,federation]'
	touch $@

# Genuine TPM quotes in the tests need swtpm + tpm2-tools (Debian packages).
system-deps:
	@if ! command -v swtpm >/dev/null || ! command -v tpm2_checkquote >/dev/null; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq swtpm swtpm-tools tpm2-tools; \
	fi

# serverless@3 + serverless-offline@13 for the real serverless.yml (pinned by package-lock.json).
node-deps: node_modules/.stamp

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

serve: setup
	$(VENV)/bin/attestation-broker serve --host 127.0.0.1 --port 8080

# The offline quick start: swtpm + local broker + PyJWT, then bundled real SNP/TDX evidence (examples/demo.py).
demo: setup system-deps
	$(PY) examples/demo.py

lint: setup
	$(VENV)/bin/ruff check shared functions tests bench tools scripts examples
	$(VENV)/bin/ruff format --check shared functions tests bench tools scripts examples

typecheck: setup
	$(VENV)/bin/mypy

test: setup system-deps node-deps lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) smoke

# `serverless package` on the real serverless.yml with dummy credentials (builds the arm64 Lambda zip).
smoke: setup node-deps
	bash scripts/smoke_deploy.sh

unit: setup
	$(VENV)/bin/pytest tests/unit tests/functional $(PYTEST_ARGS)

# Mutation fuzzing of every evidence kind for FUZZ_SECONDS per kind (the suite runs a bounded pass).
FUZZ_SECONDS ?= 600
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m tests.fuzz.run

bench: setup
	@rm -f build/bench-results.json
	@for b in bench/bench_*.py; do $(PY) -m bench.$$(basename $$b .py) || exit 1; done
	@$(PY) -m bench.summary

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache build .broker-data
