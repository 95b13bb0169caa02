# Backupsite. Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PIP_INSTALL := $(PIP) install --quiet --build-constraint requirements/build-constraints.txt

.PHONY: run test test-postgres lint install install-dev clean

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
	$(VENV)/bin/lint-imports
	BACKUPSITE_DATA_DIR=$(CURDIR)/.test-data $(PY) manage.py makemigrations --check --dry-run

# The suite on SQLite (the default database), then again on PostgreSQL when POSTGRES_URL names a
# server (CI sets it): both databases a deployment may use are proven, not assumed.
test: lint
	BACKUPSITE_DATA_DIR=$(CURDIR)/.test-data $(VENV)/bin/pytest $(PYTEST_ARGS)
	if [ -n "$(POSTGRES_URL)" ]; then $(MAKE) --no-print-directory test-postgres; fi

test-postgres: install-dev
	DATABASE_URL=$(POSTGRES_URL) BACKUPSITE_DATA_DIR=$(CURDIR)/.test-data-pg $(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf .test-data .test-data-pg .pytest_cache .mypy_cache .ruff_cache
