PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_STAMP := $(VENV)/.bench-installed

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

# `make bench` (quick, a few minutes), `make bench FULL=1` (the 1M-event log),
# `make bench SMOKE=1` (tiny sizes: the harness works), `make bench DB=postgresql://...`;
# BENCH_ARGS passes more options (python -m bench --help). It needs wrk (Debian) and the
# peer, the eventsourcing library (the bench extra).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench $(if $(FULL),--full) $(if $(SMOKE),--smoke) $(if $(DB),--db '$(DB)') $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
