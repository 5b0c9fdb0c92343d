# DL-ENS: `make demo` and `make test` bootstrap everything (uv via pip if missing, then a frozen sync).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export RAY_ENABLE_UV_RUN_RUNTIME_ENV := 0
RUN := $(UV) run --frozen
STORE ?= data/demo.zarr
DAYS ?= 3

.PHONY: setup demo test test-fast lint bench clean

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock libs/common/pyproject.toml services/ingest/pyproject.toml services/evaluate/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen --all-packages
	@touch $@

demo: setup  ## synthetic ingest of a few days on the demo domain into a local store, status, validation, a map
	$(RUN) dlens-ingest synthetic --store $(STORE) --start 2025-07-01 --days $(DAYS) --domain demo --seed 0
	$(RUN) dlens-ingest status --store $(STORE)
	$(RUN) dlens-ingest validate --store $(STORE) --deep
	$(RUN) dlens-ingest plot --store $(STORE) --species no2 --lead 18 --out data/demo_no2.png

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

test: lint  ## lint, then the whole suite (slow tests included)
	$(RUN) pytest

test-fast: setup
	$(RUN) pytest -m "not slow"

bench: setup
	$(RUN) python bench/ingest.py --s3

clean:
	rm -rf data/demo.zarr bench/results .pytest_cache .ruff_cache
