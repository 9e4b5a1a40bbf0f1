# TensorFlow.js for browsers (docs/export.md): the pinned npm build, checked, served by Django as a static
# file (the same steps as `make tfjs`; never a CDN).
FROM node:20-slim AS tfjs
ARG TFJS_VERSION=4.22.0
ARG TFJS_SHA256=300dfae273d20b4046f46a06d735688f03675a807561e9bcb5f664eb2f3d2831
WORKDIR /tfjs
RUN npm pack --silent @tensorflow/tfjs@${TFJS_VERSION} >/dev/null \
 && tar -xzf tensorflow-tfjs-${TFJS_VERSION}.tgz package/dist/tf.min.js \
 && echo "${TFJS_SHA256}  package/dist/tf.min.js" | sha256sum -c --quiet \
 && mkdir -p static/tfjs && mv package/dist/tf.min.js static/tfjs/ && echo ${TFJS_VERSION} > static/tfjs/VERSION

# The platform: web and workers.
FROM python:3.11-slim AS app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=tfjs /tfjs/static /app/.tfjs/static
RUN useradd --create-home nailset && mkdir -p /data && chown nailset /data
USER nailset
EXPOSE 8000

# The export worker (queue "export"): the platform plus the export environment (TensorFlow + the TF.js
# converter, /app/.venv-export) and Chromium + Playwright to check TF.js artifacts in a browser.
FROM app AS export
USER root
RUN apt-get update && apt-get install -y --no-install-recommends chromium && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir "$(grep -E '^playwright==' requirements-dev.txt)" \
 && python -m venv /app/.venv-export && /app/.venv-export/bin/pip install --no-cache-dir -r requirements-export.txt
USER nailset
