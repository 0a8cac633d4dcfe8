# Every target creates or refreshes .venv itself, so each works from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint format bench system-deps clean dashboards wheel

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dramatiq,celery,rabbitmq,monitor,dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dramatiq,celery,rabbitmq,monitor,dev,bench]'
	touch $(BENCH_STAMP)

system-deps:
	scripts/system-deps

demo: $(STAMP)
	$(PY) -m tasklens demo

# Most of the suite's time is spent waiting on workers, brokers and browsers, so test files run in
# TEST_PROCESSES processes at once (each file's tests stay in one); TEST_PROCESSES=0 runs them in one.
TEST_PROCESSES ?= 3

test: $(STAMP) system-deps
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks deploy
	$(VENV)/bin/ruff format --check src tests benchmarks deploy
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks deploy
	$(VENV)/bin/ruff check --fix src tests benchmarks deploy

# deploy/grafana/dashboards/*.json are generated: edit deploy/grafana/generate.py, then run this.
dashboards: $(STAMP)
	$(PY) deploy/grafana/generate.py

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

# dist/tasklens-<version>-py3-none-any.whl, to install where there is no checkout:
# pip install 'dist/tasklens-0.1.0-py3-none-any.whl[dramatiq]' (add monitor for the dashboard and CLI)
wheel: $(STAMP)
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
