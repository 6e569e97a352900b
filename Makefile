# The two commands a newcomer needs:  make demo   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATABUS := $(BIN)/databus

.PHONY: setup demo tour test unit integration lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,rocksdb]'
	touch $@

## demo: the main job: a simulated province through a local broker into decisions
demo: setup
	scripts/ensure-tools --broker
	$(DATABUS) demo

## tour: a demo broker (its own state dir), topics, publish examples/, subscribe and show the records
tour: setup
	scripts/ensure-tools --broker
	DATABUS_DEMO=1 scripts/demo

## test: every test (unit and integration against a real Kafka broker)
test: setup
	scripts/ensure-tools
	$(BIN)/python -m pytest

unit: setup
	$(BIN)/python -m pytest tests/unit

integration: setup
	scripts/ensure-tools
	$(BIN)/python -m pytest -m integration

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup
	scripts/ensure-tools --broker
	bench/run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
