# The two commands a newcomer needs are `make run` and `make test`; the rest support them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HTMX := portal/static/vendor/htmx.min.js
export FLASK_APP := wsgi

.PHONY: run test lint format bench install assets migrate seed clean

run: install
	$(BIN)/flask upgrade-db
	$(BIN)/flask seed-demo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

install: $(STAMP) $(HTMX)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,assets]'
	touch $(STAMP)

# htmx comes from npm at the exact version in package.json / package-lock.json.
$(HTMX): package.json package-lock.json $(STAMP)
	$(BIN)/python -m portal.assets

assets: $(HTMX)

migrate: install
	$(BIN)/flask upgrade-db

seed: install
	$(BIN)/flask seed-demo

clean:
	rm -rf $(VENV) node_modules portal/static/vendor
