# Two commands on a fresh machine: `make demo` (the pipeline, live) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every dependency, transitive ones included, at an exact version with its hashes: what CI,
# the developers and (runtime.lock) the image install. `make lock` after editing pyproject.toml.
# dev.lock holds every extra ([dev] ⊃ [test] ⊃ [demo]: the broker binary, cloudevents), so
# `make demo` and `make test` have what the runtime alone lacks.
DEV_LOCK     := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
UV_COMPILE    = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes

.PHONY: demo test test-fast check lint typecheck format bench clean lock contracts

$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml --extra dev -o $(DEV_LOCK)
	$(UV_COMPILE) pyproject.toml -o $(RUNTIME_LOCK)

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
	$(BIN)/lint-imports

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
