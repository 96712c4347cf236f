# The two commands a fresh clone needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PORT ?= 8000
STAMP := $(VENV)/.installed

export DJANGO_DEBUG ?= 1

.PHONY: run manage test test-fast lint format bench install clean lock

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Installs exactly what requirements/lock-dev.txt pins, hashes checked (`make lock` renews it).
$(STAMP): requirements/lock-dev.txt | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r requirements/lock-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Serves the demo on PORT. Without DATABASE_URL/CELERY_BROKER_URL it runs on SQLite under var/
# with tasks in-process; with a broker it also starts a Celery worker and the beat.
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages --ignore=.venv >/dev/null 2>&1 || true
	$(PY) manage.py seed_demo
	bash scripts/run-local.sh $(PORT)

# Any manage.py command with the settings of `make run` (debug on, SITE_URL on PORT), e.g.
# make manage ARGS="createsuperuser"
manage: $(STAMP)
	$(PY) manage.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The whole suite against the machine's PostgreSQL and Redis (see tests/settings.py).
test: $(STAMP)
	bash scripts/test-tools.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=0 DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run
	DJANGO_DEBUG=0 DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py compilemessages --ignore=.venv
	DJANGO_DEBUG=0 $(VENV)/bin/pytest $(PYTEST_ARGS)

# The edit-test loop: everything but the slow lane (workers, browser, servers, bench, image).
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	DJANGO_DEBUG=0 DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py compilemessages --ignore=.venv >/dev/null
	DJANGO_DEBUG=0 $(VENV)/bin/pytest -m "not slow" -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/digest.py
	$(PY) bench/pages.py
	$(PY) bench/consent_verify.py

clean:
	rm -rf $(VENV) var staticfiles

# Re-resolves pyproject.toml's ranges into the two lock files (runtime for the image, dev for
# the venv), with hashes. Run after changing a dependency and commit the result.
lock: | $(PY)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --universal --generate-hashes \
		--quiet -o requirements/lock.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal \
		--generate-hashes --quiet -o requirements/lock-dev.txt
