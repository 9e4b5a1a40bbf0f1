"""Start and stop a real Celery worker process for tests, on the test database and the real broker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from annotation_site.celery import app

LOG_DIR = Path(settings.VAR_DIR) / "worker-logs"


def database_url() -> str:
    """The URL of the database the tests use right now (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


def ping(hostname: str, timeout: float = 1.0) -> bool:
    replies = app.control.ping(destination=[hostname], timeout=timeout)
    return any(hostname in reply for reply in replies)


def start_worker(hostname: str, queues: str = "default", purge: bool = True, env: dict | None = None) -> subprocess.Popen:
    """``env``: more environment variables for the worker (e.g. NAILSET_JOB_MAX_ATTEMPTS)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATABASE_URL=database_url(), MEDIA_ROOT=str(settings.MEDIA_ROOT),
               NAILSET_JOB_HEARTBEAT_SECONDS="0.5", NAILSET_JOB_STALE_SECONDS="5", **(env or {}))
    command = [
        str(Path(sys.executable).with_name("celery")), "-A", "annotation_site", "worker", "--loglevel", "INFO",
        "--queues", queues, "--concurrency", "2", "--hostname", hostname, "--include", "tests.job_kinds_for_tests",
        "--without-gossip", "--without-mingle",
    ] + (["--purge"] if purge else [])
    log = open(LOG_DIR / f"{hostname.replace('@', '_')}.log", "ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               cwd=settings.BASE_DIR)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}; see {log.name}")
        if ping(hostname):
            return process
        time.sleep(0.5)
    stop_worker(process)
    raise RuntimeError(f"the worker {hostname} did not answer pings within 90 s; see {log.name}")


def stop_worker(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@contextmanager
def running_worker(hostname: str, queues: str = "default"):
    process = start_worker(hostname, queues)
    try:
        yield process
    finally:
        stop_worker(process)
