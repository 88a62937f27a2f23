# The two commands a newcomer needs are `make run` and `make test`; the rest support them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
HTMX := portal/static/vendor/htmx.min.js
# The kiosk's translations, compiled from the .po files in git (the .mo files are not committed).
MO := $(patsubst %.po,%.mo,$(wildcard kiosk/translations/*/LC_MESSAGES/messages.po))
export FLASK_APP := wsgi

.PHONY: run test lint security scan format bench bench-load bench-faults serve install assets migrate seed screenshots clean

run: install
	$(BIN)/flask upgrade-db
	$(BIN)/flask seed-demo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# One pytest worker per core (pytest-xdist), each file's tests on one worker; each worker has its
# own PostgreSQL database and Redis database. PYTEST_ARGS="-n 0" runs everything in one process.
test: install
	$(BIN)/pytest -n auto --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Static security analysis; findings are fixed or justified in place with `# nosec BXXX - reason`.
security: install
	$(BIN)/bandit -q -r portal kiosk integrations -c pyproject.toml

# wapiti and sqlmap against the running app, signed in as an employee and as a coordinator
# (security/scan.py; ~15 minutes on 2 cores). Fails on any finding not accepted in security/scan_allowlist.toml.
# SCAN_ARGS="--database postgresql" scans on a fresh PostgreSQL database instead of SQLite.
scan: install $(SCAN_STAMP)
	$(BIN)/python -m security.scan $(SCAN_ARGS)

# The scanners live in their own venv so their dependencies never touch the app's.
$(SCAN_STAMP): security/scanners.txt
	test -d $(SCAN_VENV) || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/pip install --quiet -r security/scanners.txt
	touch $(SCAN_STAMP)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

# 2 gunicorn instances + 1 worker on a private PostgreSQL and Redis (bench/cluster.py), under a
# realistic mix of people for LOAD_MINUTES (default 10): per-endpoint p50/p95/max, 0 errors.
LOAD_MINUTES ?= 10
bench-load: install
	$(BIN)/python -m bench.load_mix --minutes $(LOAD_MINUTES)

# Restart PostgreSQL, SIGKILL the worker, stop Redis, each under load: PASS/FAIL per scenario.
bench-faults: install
	$(BIN)/python -m bench.faults

# PNGs of every page at phone and desktop widths into screenshots/ (git-ignored).
screenshots: install
	$(BIN)/python -m tests.browser.screenshots

# Production-style server: several sync workers (see portal/gunicorn_conf.py).
serve: install
	$(BIN)/gunicorn -c python:portal.gunicorn_conf wsgi:app

install: $(STAMP) $(HTMX) $(MO)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null || \
	  { echo "Foyer needs Python 3.11+ with venv (Debian: apt-get install python3-venv)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,assets]'
	touch $(STAMP)

# htmx comes from npm at the exact version in package.json / package-lock.json.
$(HTMX): package.json package-lock.json $(STAMP)
	$(BIN)/python -m portal.assets

assets: $(HTMX)

$(MO): %.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@ -f

migrate: install
	$(BIN)/flask upgrade-db

seed: install
	$(BIN)/flask seed-demo

clean:
	rm -rf $(VENV) $(SCAN_VENV) node_modules portal/static/vendor
