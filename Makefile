# Two commands on a fresh machine: `make demo` (the pipeline, live) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck format bench clean contracts

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/notifier demo --duration 75

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff format --check notifier tests bench
	$(BIN)/ruff check notifier tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# The published contracts (docs/schema) through the AsyncAPI parser and a JSON Schema
# validator; needs node and npm.
contracts: $(STAMP)
	PYTHON=$(BIN)/python .ci/validate-contracts

format: $(STAMP)
	$(BIN)/ruff format notifier tests bench
	$(BIN)/ruff check --fix notifier tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
