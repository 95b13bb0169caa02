# Backupsite. Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PIP_INSTALL := $(PIP) install --quiet --build-constraint requirements/build-constraints.txt

.PHONY: run test lint install install-dev clean

$(VENV)/.run-installed: pyproject.toml requirements/build-constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

install: $(VENV)/.run-installed
install-dev: $(VENV)/.dev-installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py runpanel

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	BACKUPSITE_DATA_DIR=$(CURDIR)/.test-data $(PY) manage.py makemigrations --check --dry-run

test: lint
	BACKUPSITE_DATA_DIR=$(CURDIR)/.test-data $(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .test-data .pytest_cache .mypy_cache .ruff_cache
