# The two commands (see README): `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv migrate demo bench clean chromium node

# Re-install whenever a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py setup_demo

# Web server + Celery worker on the embedded defaults (SQLite, var/media, filesystem broker).
run: demo
	$(PY) -m annotation_site.run

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The annotation tool's JavaScript unit tests run on Node's test runner.
node:
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; }

# The whole suite. With DATABASE_URL / CELERY_BROKER_URL set it runs against them (see .ci/run);
# without, in embedded mode. Tests and their workers write below var/test/.
test: $(STAMP) chromium node
	NAILSET_VAR_DIR=$${NAILSET_VAR_DIR:-$(CURDIR)/var/test} $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/api_latency.py

clean:
	rm -rf var/test .pytest_cache
