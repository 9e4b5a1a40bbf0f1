"""The Celery application. Every background job runs through ``jobs.tasks.run_job``.

The broker comes from settings (``CELERY_*``): Redis in production, the filesystem transport in embedded
mode. There is no eager mode here: when the broker is down, enqueuing fails loudly instead of silently
running the job inside the web request.
"""
import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")

app = Celery("nailset")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def take_over_lost_jobs(sender, **kwargs):
    """A worker that starts again under the same name re-queues the jobs it was running when it died; every
    worker also re-queues (or fails) running jobs of any worker whose heartbeat went stale, now and then
    periodically from a thread of its main process (jobs.runner.StaleJobReaper)."""
    from django.db import connection

    from jobs.runner import recover_interrupted_jobs, start_stale_job_reaper

    recover_interrupted_jobs(worker=sender.hostname)
    connection.close()  # pool processes forked later must not share this process's connection
    start_stale_job_reaper()


@worker_shutdown.connect
def stop_taking_over_jobs(sender=None, **kwargs):
    from jobs.runner import stop_stale_job_reaper

    stop_stale_job_reaper()
