# geossl: `make test` and `make demo` create the environment (.venv) when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.geossl-installed
DEMO_OUT ?= demo_out
DATA_ROOT ?= ../shared/data
PYTEST_ARGS ?=

.PHONY: test demo bench lint typecheck env clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

env: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check geossl tests bench

typecheck: $(STAMP)
	$(PY) -m mypy geossl

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/geossl demo --run-dir $(DEMO_OUT)

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/predict.py
	$(PY) bench/vectorize.py --data-root $(DATA_ROOT)
	$(PY) bench/window_reads.py --data-root $(DATA_ROOT)
	$(PY) bench/ssl_accuracy.py --data-root $(DATA_ROOT)

clean:
	rm -rf $(DEMO_OUT) bench/out .pytest_cache
