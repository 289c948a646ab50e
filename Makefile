# Tailored: `make demo` runs the product on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo install install-test install-drill test lint migrations-check bench clean \
	drills drill-send-kill drill-pg-restart drill-redis-outage drill-fuzz

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch is pinned first so pip keeps the local CPU build instead of pulling CUDA wheels.
install: $(PY)
	$(PIP) install -q torch==2.13.0
	PYTHONWARNINGS=ignore $(PIP) install -q -e .

install-test: $(PY)
	$(PIP) install -q torch==2.13.0
	PYTHONWARNINGS=ignore $(PIP) install -q -e ".[test]"

# Quiet on purpose: the summary it prints ends with the URL and the login. LOG_LEVEL=INFO shows everything.
demo: install
	@$(PY) manage.py migrate --noinput -v 0
	@LOG_LEVEL=$${LOG_LEVEL:-WARNING} SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(PY) manage.py demo
	@SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(PY) manage.py runserver $(HOST):$(PORT)

test: install-test
	$(PY) -m ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -q

lint: $(PY)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

migrations-check: $(PY)
	$(PY) manage.py makemigrations --check --dry-run

bench: install-test
	$(PIP) install -q -e ".[bench]"
	$(PY) bench/quality.py

# Failure drills (bench/README.md): private PostgreSQL / Redis / SMTP servers on free 127.0.0.1 ports.
install-drill: $(PY)
	$(PIP) install -q torch==2.13.0
	PYTHONWARNINGS=ignore $(PIP) install -q -e ".[drill]"

drill-send-kill: install-drill
	$(PY) bench/drill_send_kill.py

drill-pg-restart: install-drill
	$(PY) bench/drill_pg_restart.py

drill-redis-outage: install-drill
	$(PY) bench/drill_redis_outage.py

drill-fuzz: install-drill
	$(PY) bench/drill_fuzz.py

drills: drill-send-kill drill-pg-restart drill-redis-outage drill-fuzz

clean:
	rm -rf $(VENV) db.sqlite3 var
