# The two commands of the README, and the regeneration of the contracts.
#   make up    - set everything up (first run) and run the platform (embedded NATS, SQLite)
#   make test  - set everything up (first run) and run lint, types and the whole test suite
#   make demo  - watch it work: a local receiver, subscriptions, deliveries, a failure
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA_DIR ?= .webhooks

.PHONY: up demo test test-fault lint protos bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/webhooks up --data-dir $(DATA_DIR)

# Against a running `make up`, or with its own platform when none answers.
demo: $(STAMP)
	$(BIN)/webhooks demo --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Only the fault-tolerance tests (`make test` runs them too): kill -9 of every service,
# NATS restarts, a 3-node NATS cluster under load (~3 min).
test-fault: $(STAMP)
	$(BIN)/pytest -m fault tests/e2e/test_fault_tolerance.py

protos: $(STAMP)
	$(BIN)/python protos/generate.py

bench: $(STAMP)
	$(BIN)/python bench/subscriptions.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
