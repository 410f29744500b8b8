# `make run` sets up a local virtual environment (once) and starts the gateway; `make demo` starts
# it with local fake providers, no keys needed.
# `make test` sets it up and runs every check: lint, format, types, the layering, security, the
# generated files' freshness, the test suite with coverage (floor: 90%). scripts/verify does the
# same without make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCRIPTS := scripts/generate-types scripts/generate-docs scripts/demo

.PHONY: run demo test lint types layers security generated regenerate pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmgw

# The gateway with local fake providers (one of them failing part of the time): no keys needed.
demo: $(STAMP)
	$(BIN)/python scripts/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench $(SCRIPTS)
	$(BIN)/ruff format --check src tests bench $(SCRIPTS)

types: $(STAMP)
	$(BIN)/mypy
	$(foreach script,$(SCRIPTS),$(BIN)/mypy $(script) &&) true

# The import contracts in pyproject.toml: layers, no web framework in the core, no cycles.
layers: $(STAMP)
	$(BIN)/lint-imports

security: $(STAMP)
	$(BIN)/bandit --quiet -c pyproject.toml -r src

# src/llmgw/api_types.py must be what api/openai_proxy.yml generates, and .env.example and the
# README's settings table what src/llmgw/config.py declares.
generated: $(STAMP)
	$(BIN)/python scripts/generate-types --check
	$(BIN)/python scripts/generate-docs --check

regenerate: $(STAMP)
	$(BIN)/python scripts/generate-types
	$(BIN)/python scripts/generate-docs

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term

test: lint types layers security generated pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
