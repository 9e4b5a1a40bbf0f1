# The two commands (see README): `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv migrate demo bench clean chromium node npm export-env tfjs

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
run: demo $(TFJS_STAMP)
	$(PY) -m annotation_site.run

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The annotation tool's JavaScript unit tests run on Node's test runner.
node:
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; }

# The export environment (docs/export.md): TensorFlow + the TF.js converter, which clash with the main
# environment's pins; only `python -m ml.export.tfjs` runs in it, as a subprocess of an export job.
EXPORT_VENV := .venv-export
EXPORT_PY := $(EXPORT_VENV)/bin/python
EXPORT_STAMP := $(EXPORT_VENV)/.installed

$(EXPORT_STAMP): requirements-export.txt
	@test -x $(EXPORT_PY) || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_PY) -m pip install --quiet --upgrade pip
	$(EXPORT_PY) -m pip install --quiet -r requirements-export.txt
	@touch $(EXPORT_STAMP)

export-env: $(EXPORT_STAMP)

npm:
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }

# TensorFlow.js for the browser, pinned and checked, served by Django as a static file (never a CDN):
# only dist/tf.min.js of the npm package, into the git-ignored .tfjs/static/tfjs/.
TFJS_VERSION := 4.22.0
TFJS_SHA256 := 300dfae273d20b4046f46a06d735688f03675a807561e9bcb5f664eb2f3d2831
TFJS_DIR := .tfjs/static/tfjs
TFJS_STAMP := $(TFJS_DIR)/.installed-$(TFJS_VERSION)

$(TFJS_STAMP):
	@$(MAKE) --no-print-directory npm
	rm -rf .tfjs/pack $(TFJS_DIR) && mkdir -p .tfjs/pack $(TFJS_DIR)
	cd .tfjs/pack && npm pack --silent @tensorflow/tfjs@$(TFJS_VERSION) >/dev/null
	tar -xzf .tfjs/pack/tensorflow-tfjs-$(TFJS_VERSION).tgz -C .tfjs/pack package/dist/tf.min.js
	echo "$(TFJS_SHA256)  .tfjs/pack/package/dist/tf.min.js" | sha256sum -c --quiet
	mv .tfjs/pack/package/dist/tf.min.js $(TFJS_DIR)/tf.min.js
	rm -rf .tfjs/pack
	echo $(TFJS_VERSION) > $(TFJS_DIR)/VERSION
	@touch $(TFJS_STAMP)

tfjs: $(TFJS_STAMP)

# The whole suite. With DATABASE_URL / CELERY_BROKER_URL set it runs against them (see .ci/run);
# without, in embedded mode. Tests and their workers write below var/test/.
test: $(STAMP) $(EXPORT_STAMP) $(TFJS_STAMP) chromium node
	NAILSET_VAR_DIR=$${NAILSET_VAR_DIR:-$(CURDIR)/var/test} $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/api_latency.py

clean:
	rm -rf var/test .pytest_cache
