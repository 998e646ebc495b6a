# Two commands on a fresh machine: `make demo` (the pipeline, live) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast check lint typecheck format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/notifier demo --duration 75

test: $(STAMP)
	$(BIN)/pytest

# The suite without the tests marked slow (crash loop, outages, demo, bench smoke): about a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check notifier tests bench
	$(BIN)/ruff check notifier tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

format: $(STAMP)
	$(BIN)/ruff format notifier tests bench
	$(BIN)/ruff check --fix notifier tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
