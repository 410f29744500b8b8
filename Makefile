# `make run` sets up a local virtual environment (once) and starts the gateway.
# `make test` sets it up and runs every check: lint, format, types, security, the generated code's
# freshness, the test suite with coverage (floor: 90%). scripts/verify runs the same.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types security generated regenerate pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmgw

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts/generate-types
	$(BIN)/ruff format --check src tests bench scripts/generate-types

types: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy scripts/generate-types

security: $(STAMP)
	$(BIN)/bandit --quiet -c pyproject.toml -r src

# src/llmgw/api_types.py must be what api/openai_proxy.yml generates.
generated: $(STAMP)
	$(BIN)/python scripts/generate-types --check

regenerate: $(STAMP)
	$(BIN)/python scripts/generate-types

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term

test: lint types security generated pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
