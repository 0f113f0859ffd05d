PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/timeline serve $(ARGS)

# Each test is bounded (pytest-timeout, pyproject.toml); the whole run is too, because a store
# left open by a failing test keeps a non-daemon database thread alive and the interpreter
# from exiting. The run takes a few minutes; the bound leaves room for a slow day.
TEST_TIMEOUT ?= 1500

test: $(STAMP)
	timeout --kill-after=30 $(TEST_TIMEOUT) $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict events projections timeline

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
