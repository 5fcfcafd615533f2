# btcfs — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs: what the pipeline, the demo and the API run (`.[ml,api]`), and on top of it
# what the tests, linters, drills and benchmarks need (`dev`, `bigquery`: BigQuery client,
# crucible and GCS emulators, schemathesis, sqlfluff, mypy; `mlflow`: the client and the
# `mlflow server` its tests run). Each target waits for the one it needs.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# setuptools notes every editable install of this flat layout with an informational
# "Editable installation" warning (not a deprecation): hushed; its deprecation warnings still show.
PIP_EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -c constraints.txt -e
export BTCFS_DATA_DIR ?= $(CURDIR)/data
export DBT_PROFILES_DIR ?= $(CURDIR)/profiles

.PHONY: help setup demo ingest build train serve test test-fast lint bench drills shell docs docs-serve clean

help: ## Show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(RUN_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The venv's own pip and setuptools are old (setuptools 65 has known CVEs): pinned upgrades.
	$(BIN)/pip install --quiet --upgrade -c constraints.txt pip setuptools
	$(PIP_EDITABLE) ".[ml,api]"
	$(BIN)/pip check
	rm -f $(VENV)/.installed  # the single stamp of earlier Makefiles
	touch $@

# --pre: crucible-emulator (bigquery extra) exists only as a pre-release.
$(DEV_STAMP): $(RUN_STAMP)
	$(PIP_EDITABLE) ".[dev,bigquery,ml,api,mlflow]" --pre
	$(BIN)/pip check
	touch $@

setup: $(DEV_STAMP) ## Create .venv with the btcfs command and every pinned dependency (run + dev + bigquery + mlflow)

demo: $(RUN_STAMP) ## Run the whole pipeline offline (replay -> lake -> dbt build -> train -> publish), then serve the API
	$(BIN)/python scripts/demo.py

ingest: $(RUN_STAMP) ## Land every configured dataset up to now (btcfs run ingest: btcfs ingest all)
	$(BIN)/btcfs run ingest

build: $(RUN_STAMP) ## Build the dbt warehouse and check its QA gates (btcfs run build: dbt build, btcfs qa)
	source $(BIN)/activate && btcfs run build

train: $(RUN_STAMP) ## Train the CatBoost model on the warehouse (btcfs train): registry + HTML report
	$(BIN)/btcfs train

serve: $(RUN_STAMP) ## Serve the published warehouse: API, docs at /docs, dashboard at / (btcfs serve)
	$(BIN)/btcfs serve

# Both cores: pytest-xdist workers, each test module (or group of modules sharing a session
# fixture) on one worker, so its fixtures are built once (tests/conftest.py, docs/testing.md).
# PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup
# What test-fast leaves out: whatever runs dbt or is marked slow, the emulators, the browser, the drills.
FAST_MARKERS := not slow and not dbt and not bigquery and not browser and not drills

test: $(DEV_STAMP) ## Set up, then run lint and every test (both cores: docs/testing.md)
	$(MAKE) lint
	$(BIN)/pytest $(PYTEST_PARALLEL)

test-fast: $(DEV_STAMP) ## The inner loop, ~2 min: the tests that run no dbt build, emulator, browser or drill (no lint)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "$(FAST_MARKERS)"

lint: $(DEV_STAMP) ## ruff, ruff format --check, mypy, the import layers, portable-SQL check, sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_portable_sql.py
	source $(BIN)/activate && sqlfluff lint models

bench: $(DEV_STAMP) ## Run every benchmark, print one table (figure, value, target, pass/short), save it in data/reports/bench/
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

DRILL ?=
drills: $(DEV_STAMP) ## Reliability drills (kill -9, faults, damaged files, disk full, load, fuzz, secrets, security); one: make drills DRILL=kill9
	$(BIN)/python -m drills.run $(DRILL) $(DRILL_ARGS)

shell: $(RUN_STAMP) ## Open the warehouse in the DuckDB CLI, read-only (marts: bars_5m, bars_1h, ...)
	$(BIN)/duckdb -readonly -cmd "set TimeZone = 'UTC'" $(BTCFS_DATA_DIR)/warehouse/build.duckdb

docs: $(RUN_STAMP) ## Generate the dbt docs site (lineage, exposures, every model and column) in target/
	source $(BIN)/activate && dbt docs generate

DOCS_PORT ?= 8080
docs-serve: docs ## Serve the dbt docs site on 127.0.0.1:$(DOCS_PORT) (DOCS_PORT=... moves it)
	source $(BIN)/activate && dbt docs serve --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

clean: ## Remove generated data and build artefacts (keeps .venv)
	rm -rf data target logs .pytest_cache .mypy_cache .ruff_cache
