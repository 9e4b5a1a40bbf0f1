"""The Celery application. Every background job runs through ``jobs.tasks.run_job``.

The broker comes from settings (``CELERY_*``): Redis in production, the filesystem transport in embedded
mode. There is no eager mode here: when the broker is down, enqueuing fails loudly instead of silently
running the job inside the web request.
"""
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")

app = Celery("nailset")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def recover_jobs_of_this_worker(sender, **kwargs):
    """A worker that starts again under the same name re-queues the jobs it was running when it died."""
    from jobs.runner import recover_interrupted_jobs

    recover_interrupted_jobs(worker=sender.hostname)
