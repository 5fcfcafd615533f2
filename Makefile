# btcfs — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BTCFS_DATA_DIR ?= $(CURDIR)/data
export DBT_PROFILES_DIR ?= $(CURDIR)/profiles

.PHONY: help setup demo ingest build train serve test lint bench drills shell docs clean

help: ## Show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# The venv's own pip and setuptools are old (setuptools 65 has known CVEs): pinned upgrades.
	$(BIN)/pip install --quiet --upgrade -c constraints.txt pip setuptools
	$(BIN)/pip install --quiet --pre -c constraints.txt -e ".[dev,bigquery,ml,api]"
	$(BIN)/pip check
	touch $(STAMP)

setup: $(STAMP) ## Create .venv with the btcfs command and every pinned dependency

demo: setup ## Run the whole pipeline offline (replay -> lake -> dbt build -> train -> publish), then serve the API
	$(BIN)/python scripts/demo.py

ingest: setup ## Land every configured dataset up to now (btcfs ingest all)
	$(BIN)/btcfs ingest all

build: setup ## Build the dbt warehouse (dbt build, target dev), then print the QA gates (btcfs qa)
	mkdir -p $(BTCFS_DATA_DIR)/warehouse
	source $(BIN)/activate && { dbt build; status=$$?; btcfs qa; exit $$status; }

train: setup ## Train the CatBoost model on the warehouse (btcfs train): registry + HTML report
	$(BIN)/btcfs train

serve: setup ## Serve the published warehouse: API, docs at /docs, dashboard at / (btcfs serve)
	$(BIN)/btcfs serve

test: setup ## Set up, then run lint and every test
	$(MAKE) lint
	$(BIN)/pytest

lint: setup ## ruff, ruff format --check, mypy, portable-SQL check, sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_portable_sql.py
	source $(BIN)/activate && sqlfluff lint models

bench: setup ## Run every benchmark, print one table (figure, value, target, pass/short), save it in data/reports/bench/
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

DRILL ?=
drills: setup ## Reliability drills (kill -9, faults, damaged files, disk full, load, fuzz, secrets); one: make drills DRILL=kill9
	$(BIN)/python -m drills.run $(DRILL) $(DRILL_ARGS)

shell: setup ## Open the warehouse in the DuckDB CLI, read-only (marts: bars_5m, bars_1h, ...)
	$(BIN)/duckdb -readonly -cmd "set TimeZone = 'UTC'" $(BTCFS_DATA_DIR)/warehouse/build.duckdb

docs: setup ## Generate the dbt docs site (lineage, every model and column) in target/
	source $(BIN)/activate && dbt docs generate

clean: ## Remove generated data and build artefacts (keeps .venv)
	rm -rf data target logs .pytest_cache .mypy_cache .ruff_cache
