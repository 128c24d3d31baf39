# dbt-ferry: `make demo` and `make test` do all the set-up on a machine with only Python.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# uv: the one on PATH, or one installed with pip into .tools/ on first use.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin

export UV_PYTHON_DOWNLOADS := never
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# Tests start many interpreters that import dbt and Prefect: let them write .pyc into .venv (empty = unset).
export PYTHONDONTWRITEBYTECODE :=
# mypy's cache outside the checkout (like uv's): a clean clone checks only what changed, not every stub again
# (~80 s here). mypy checks each cached module against its source's hash, so a stale entry is never trusted.
export MYPY_CACHE_DIR ?= $(HOME)/.cache/dbt-ferry/mypy
# The env pack and the tests call uv as a program: make the one we use findable.
export PATH := $(dir $(UV)):$(PATH)

.PHONY: help install demo check test test-fast test-faults bench bench-quick dist clean

help:
	@echo "make demo   package, publish and fetch the example dbt project (installs everything first)"
	@echo "make test   lint, types and the whole test suite"
	@echo "make check  lint and types only"
	@echo "make dist   build dbt-ferry's wheel and sdist into dist/ (checked with twine)"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

demo: install
	@bash scripts/demo.sh

check: install
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy

# Two workers (the machine's cores), each test file whole on one of them (module fixtures stay shared).
PYTEST_WORKERS ?= 2

test: check
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile --durations=25

test-fast: install
	$(BIN)/pytest -m "not slow" -p no:cacheprovider

# The fault tests alone (also part of make test), then the trials RELIABILITY.md reports (127.0.0.1 only, ~2 min).
FAULT_TESTS := tests/storage/test_s3_faults.py tests/core/test_archive.py tests/core/test_tarcheck.py \
	tests/core/test_archive_limits.py tests/core/test_chunks.py tests/release/test_release_trust.py \
	tests/release/test_store_recovery.py tests/release/test_disk_full.py tests/runtime/test_sigterm_fetch.py \
	tests/runtime/test_state_jobs.py tests/runtime/test_sigterm.py tests/core/test_archive_generated.py \
	tests/release/test_promote_race.py tests/runtime/test_sigterm_phases.py tests/runtime/test_secret_vars.py \
	tests/release/test_envpack_odd.py tests/release/test_odd_states.py
test-faults: install
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(FAULT_TESTS)
	$(BIN)/python -m bench.faults --trials 100

# The fixed cost on the bundled example against bare dbt (no server, running server), 2 rounds: ~1-2 min.
bench-quick: install
	$(BIN)/python bench/quick.py

bench: install
	$(UV) sync --locked --all-extras --all-groups
	$(BIN)/python bench/overhead.py && $(BIN)/python bench/coldstart.py && $(BIN)/python bench/parse.py \
		&& $(BIN)/python bench/package.py && $(BIN)/python bench/export.py && $(BIN)/python bench/prefect_modes.py \
		&& $(BIN)/python bench/report.py && $(BIN)/python bench/quick.py

# dbt-ferry's wheel and sdist in dist/, checked as the package index will read them.
dist: install
	rm -rf dist
	$(UV) build --out-dir dist
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf .demo .tools .venv .mypy_cache .ruff_cache .pytest_cache dist
