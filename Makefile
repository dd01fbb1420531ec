# Closedloop: `make run` runs the whole system locally, `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

MODELS_STAMP := var/models/.converted
PACKAGES := -e shared -e services/identity -e services/ingest -e services/classify -e services/ticketing \
            -e services/notify -e services/console -e services/insights
PROJECT_FILES := constraints.txt requirements-dev.txt shared/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: install run test test-fast bench evaluate lint typecheck format openapi clean help

help:
	@echo "make run      install (once) and run the whole system locally"
	@echo "make test     install (once) and run the test suite"
	@echo "make bench    run the benchmarks"
	@echo "make evaluate classification accuracy on Banking77 (BANKING77=path/to/train.csv)"
	@echo "make lint     ruff"
	@echo "make typecheck mypy (strict on shared/closedloop; the files are in pyproject.toml)"
	@echo "make openapi  export each service's OpenAPI spec to docs/openapi/"

install: $(STAMP) $(MODELS_STAMP)

# Re-installs only when a dependency file changed, so a second `make run` starts at once.
$(STAMP): $(PROJECT_FILES)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: otherwise a resolver may pick a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

# classify's ONNX forward passes, fp32 and int8 (ADR 0009), converted from the packaged model once, so no
# service start or test converts it; again after `make clean`, a dependency change or a new recipe.
$(MODELS_STAMP): $(STAMP) services/classify/classify/ml/onnx_graphs.py
	HF_HUB_OFFLINE=1 $(BIN)/python -m classify.ml.onnx_graphs
	touch $(MODELS_STAMP)

run: install
	$(BIN)/python scripts/run_local.py

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not e2e"

# BENCH_ARGS=--quick for a short run (~15-20 min instead of ~60); see README "Benchmarks".
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/insights_queries.py

# Classification accuracy, trained and measured through the classify service's own HTTP API.
BANKING77 ?= ../shared/data/banking77/train.csv
evaluate: install
	$(BIN)/python -m classify.evaluate --train $(BANKING77)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

openapi: install
	$(BIN)/python scripts/export_openapi.py

clean:
	rm -rf var .pytest_cache
