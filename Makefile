# Two commands do everything on a new machine:
#   make run   set up, migrate, seed the demo, serve on http://127.0.0.1:5000 (PORT overrides)
#   make test  set up and run every test (unit, integration on SQLite and PostgreSQL, browser)
# and, for a quicker look: make unit (use cases with fakes), make browser (Chromium journeys)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
STAMP := .make
export FLASK_APP := app

.PHONY: run test setup assets db seed lint unit browser chromium clean bench

setup: $(STAMP)/venv assets

$(STAMP)/venv: requirements.txt requirements-dev.txt
	@mkdir -p $(STAMP)
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

assets: static/nhsuk/nhsuk-frontend.min.css

static/nhsuk/nhsuk-frontend.min.css: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to install the NHS.UK frontend assets"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf static/nhsuk && mkdir -p static/nhsuk
	cp -r node_modules/nhsuk-frontend/dist/nhsuk/assets/. static/nhsuk/
	cp node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.js static/nhsuk/
	@# The webfont lives on an external host: drop its @font-face rules so pages need nothing from outside
	@# (Content-Security-Policy allows fonts from this site only); text falls back to Arial.
	sed -E 's/@font-face\{[^}]*\}//g' node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css > static/nhsuk/nhsuk-frontend.min.css

db: setup
	$(BIN)/flask db upgrade

seed: db
	$(BIN)/flask demo seed --accounts-json demo-accounts.json

run: seed
	@echo
	@echo "Serving on http://127.0.0.1:$(PORT) – sign in with an account above (demo-accounts.json has them all)."
	@echo "Current 6-digit code for a TOTP secret:  $(BIN)/flask demo code SECRET"
	@echo "Emails and text messages the demo sends: http://127.0.0.1:$(PORT)/demo-system/messages"
	@# The outbox worker (messages, reminders, earlier-appointment offers, queued writes) runs beside the server
	@# and stops with it. Messages link to pages of this server.
	@export PATIENT_ONLINE_SERVICE_URL=$${PATIENT_ONLINE_SERVICE_URL:-http://127.0.0.1:$(PORT)}; \
	  $(BIN)/flask outbox run --interval 2 & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/flask run --host 127.0.0.1 --port $(PORT)

chromium:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's Chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-liberation; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup chromium lint
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile

# The tiers on their own: use cases and domain rules with fakes (no app, no server: seconds), and the browser.
unit: setup
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/unit

browser: setup chromium
	$(BIN)/python -m pytest -p no:cacheprovider -q -m browser tests/e2e

# Benchmark (not part of `make test`): generates data at two scales into PostgreSQL (reused when current),
# serves with gunicorn, drives the journeys, prints the table and writes docs/benchmarks.md. Needs PostgreSQL
# and Redis on 127.0.0.1. BENCH_ARGS passes options, e.g. BENCH_ARGS="--scales small --seconds 10".
bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(STAMP) node_modules static/nhsuk instance
