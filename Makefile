# geossl: `make test` and `make demo` create the environment (.venv) when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.geossl-installed
DEMO_OUT ?= demo_out
DATA_ROOT ?= ../shared/data
PYTEST_ARGS ?=
# QGIS's Python (system packages python3-qgis and qgis-providers), for the plugin's tests and screenshots.
QGIS_PYTHON ?= /usr/bin/python3
PLUGIN_ZIP ?= dist/geossl_processing.zip

.PHONY: test demo bench lint typecheck docs docs-check env clean qgis-plugin qgis-test qgis-screenshots

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

env: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check geossl tests bench docs qgis_plugin

typecheck: $(STAMP)
	$(PY) -m mypy geossl

# The documentation site (mkdocs.yml; docs/hooks.py generates the command reference from the code) into build/site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build

# The same build with warnings as errors: a broken link, a missing anchor or a stale directive fails it.
docs-check: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test: $(STAMP) lint typecheck docs-check
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The QGIS Processing plugin as a zip to install (Plugins > Manage and Install Plugins > Install from ZIP).
qgis-plugin:
	$(PYTHON) qgis_plugin/build.py --out $(PLUGIN_ZIP)

# The plugin in real QGIS (skipped when QGIS's Python bindings are missing); geossl runs from $(VENV).
qgis-test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(QGIS_PYTHON) -m unittest discover -s qgis_plugin/tests -v

# docs/qgis_toolbox.png and docs/qgis_suggest.png, drawn by QGIS on a virtual X display (xvfb).
qgis-screenshots: $(STAMP)
	xvfb-run -a -s "-screen 0 1600x1000x24" $(QGIS_PYTHON) qgis_plugin/tests/screenshots.py docs

demo: $(STAMP)
	$(VENV)/bin/geossl demo --run-dir $(DEMO_OUT)

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/predict.py
	$(PY) bench/vectorize.py --data-root $(DATA_ROOT)
	$(PY) bench/window_reads.py --data-root $(DATA_ROOT)
	$(PY) bench/ssl_accuracy.py --data-root $(DATA_ROOT)

clean:
	rm -rf $(DEMO_OUT) bench/out build/site .pytest_cache dist
