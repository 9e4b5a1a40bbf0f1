"""Health of the platform's three moving parts: the database, the job broker and the workers."""
from __future__ import annotations

import time

from django.conf import settings
from django.db import connection


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # any failure of a dependency is reported, not raised
        detail, ok = f"{exc.__class__.__name__}: {exc}", False
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_broker() -> str:
    from annotation_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.as_uri()


def check_workers() -> list[str]:
    """The first worker to answer a ping (``limit=1``: a healthy platform answers in milliseconds
    instead of always waiting out the timeout to collect every reply)."""
    from annotation_site.celery import app

    replies = app.control.ping(timeout=settings.NAILSET_WORKER_PING_TIMEOUT, limit=1)
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        raise RuntimeError(f"no worker answered a ping within {settings.NAILSET_WORKER_PING_TIMEOUT:g} s")
    return workers


def platform_health() -> dict:
    database = _timed(check_database)
    broker = _timed(check_broker)
    workers = _timed(check_workers) if broker["ok"] else {"ok": False, "detail": "broker is down", "ms": 0.0}
    return {"ok": database["ok"] and broker["ok"] and workers["ok"], "database": database, "broker": broker, "workers": workers}
