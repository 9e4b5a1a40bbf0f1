from celery import shared_task
from django.db import close_old_connections

from .runner import execute_job


@shared_task(bind=True, name="jobs.run_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(self, job_id: int) -> None:
    """The one Celery task: a thin call into the job runner."""
    close_old_connections()  # a long-lived worker process must not reuse a connection the server dropped
    try:
        execute_job(job_id, worker=self.request.hostname or "celery", task_id=self.request.id)
    finally:
        close_old_connections()
