"""Starting, running, cancelling and recovering jobs.

The same ``execute_job`` runs a job inside a Celery worker (``jobs.tasks.run_job``) and in the
foreground of a management command, so both report progress through the same Job row.

Cancellation is cooperative: ``cancel_job`` marks the row; the running job sees it at its next
``ctx.progress``/``ctx.log``/``ctx.check_cancelled`` call (a heartbeat thread polls the row) and stops.
A worker that dies mid-job leaves the row ``running`` with an old heartbeat: a redelivered message (acks
late) or the same worker starting again (``recover_interrupted_jobs``) takes the job over and runs it again.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .models import Job
from .registry import get_job_kind, job_key

logger = logging.getLogger("nailset.jobs")
LOG_TAIL_CHARS = 20_000
FOREGROUND = "foreground"


class JobCancelled(Exception):
    """Raised inside a running job once a cancel was requested."""


class BrokerUnavailable(RuntimeError):
    """The job row exists but its message could not be handed to the broker."""


def enqueue_job(kind: str, arguments: dict | None = None, *, user=None, send: bool = True) -> tuple[Job, bool]:
    """Create the Job row and hand it to the workers. Returns ``(job, created)``.

    When a job with the same key is already queued or running, that job is returned with ``created``
    False and nothing new is queued. With ``send=False`` the row is only created (foreground commands).
    """
    spec = get_job_kind(kind)
    arguments = spec.clean_arguments(arguments)
    key = job_key(kind, arguments)
    created_by = user if getattr(user, "pk", None) else None
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind, key=key, arguments=arguments, queue=spec.queue, created_by=created_by,
                celery_task_id=str(uuid.uuid4()), worker="" if send else FOREGROUND,
            )
    except IntegrityError:
        existing = Job.objects.filter(key=key, status__in=Job.ACTIVE).first()
        if existing is None:  # it finished between our insert and this read: try once more
            return enqueue_job(kind, arguments, user=user, send=send)
        return existing, False
    if send:
        # After the surrounding transaction commits, so a worker always finds the row. Outside a
        # transaction this runs at once and a broker failure reaches the caller.
        transaction.on_commit(lambda: send_job(job))
    return job, True


def send_job(job: Job) -> None:
    from .tasks import run_job

    try:
        run_job.apply_async(args=[job.pk], task_id=job.celery_task_id, queue=job.queue)
    except Exception as exc:  # the broker is down: say so, never run it inside the request instead
        _finish(job.pk, Job.Status.FAILED, error=f"could not reach the job broker: {exc}")
        raise BrokerUnavailable(f"the job broker is unreachable ({exc.__class__.__name__}: {exc})") from exc


def cancel_job(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop. Finished jobs are left as they are."""
    now = timezone.now()
    cancelled_in_queue = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, cancel_requested_at=now, finished_at=now, message="cancelled before it started"
    )
    if not cancelled_in_queue:
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, cancel_requested_at__isnull=True).update(cancel_requested_at=now)
    job.refresh_from_db()
    return job


def _finish(job_id: int, status: str, **fields) -> None:
    Job.objects.filter(pk=job_id).update(status=status, finished_at=timezone.now(), **fields)


class JobContext:
    """What a job kind sees of its Job row: progress, log lines and cancellation."""

    def __init__(self, job: Job, on_progress: Callable[[float, str], None] | None = None):
        self.job = job
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self._last_write = 0.0
        self._log_lines: list[str] = [job.log] if job.log else []

    @property
    def arguments(self) -> dict:
        return self.job.arguments

    def cancel_seen(self) -> None:
        self._cancelled.set()

    @property
    def cancel_requested(self) -> bool:
        """For work that stops on its own terms (a training loop between steps) instead of raising."""
        return self._cancelled.is_set()

    def check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled()

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress (0..1) with an optional message; raises JobCancelled when asked to stop."""
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        changed_message = message is not None and message != self.job.message
        if changed_message or fraction >= 1.0 or now - self._last_write >= 0.5:
            fields: dict[str, Any] = {"progress": fraction, "heartbeat_at": timezone.now()}
            if message is not None:
                fields["message"] = message[:500]
            Job.objects.filter(pk=self.job.pk).update(**fields)
            self._last_write = now
        self.job.progress = fraction
        if message is not None:
            self.job.message = message[:500]
        if self._on_progress:
            self._on_progress(fraction, self.job.message)
        self.check_cancelled()

    def log(self, line: str) -> None:
        logger.info("job %s: %s", self.job.pk, line)
        self._log_lines.append(str(line))
        text = "\n".join(self._log_lines)[-LOG_TAIL_CHARS:]
        self._log_lines = [text]
        Job.objects.filter(pk=self.job.pk).update(log=text, heartbeat_at=timezone.now())
        self.job.log = text
        self.check_cancelled()


class _Heartbeat(threading.Thread):
    """Keeps ``heartbeat_at`` fresh while a job runs and notices a cancel request."""

    def __init__(self, job_id: int, ctx: JobContext):
        super().__init__(daemon=True, name=f"job-{job_id}-heartbeat")
        self.job_id, self.ctx, self.stop = job_id, ctx, threading.Event()

    def run(self):
        try:
            while not self.stop.wait(settings.NAILSET_JOB_HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id).update(heartbeat_at=timezone.now())
                if Job.objects.filter(pk=self.job_id, cancel_requested_at__isnull=False).exists():
                    self.ctx.cancel_seen()
        except Exception:  # a lost database must not kill the job's own thread
            logger.exception("heartbeat of job %s failed", self.job_id)
        finally:
            connection.close()


def _claim(job_id: int, worker: str, task_id: str | None) -> Job | None:
    """Mark the job running for this worker, or return None when it is not ours to run."""
    stale_before = timezone.now() - timedelta(seconds=settings.NAILSET_JOB_STALE_SECONDS)
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in Job.FINISHED:
            return None
        if task_id is not None and task_id != job.celery_task_id:
            logger.warning("ignoring message %s for job %s: the job expects message %s", task_id, job_id, job.celery_task_id)
            return None
        if job.status == Job.Status.RUNNING:
            heartbeat = job.heartbeat_at or job.started_at
            if heartbeat and heartbeat > stale_before:
                return None  # alive: another delivery of this message is running it
        if job.cancel_requested_at:
            _finish(job.pk, Job.Status.CANCELLED, message="cancelled")
            return None
        now = timezone.now()
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.RUNNING, worker=worker, attempts=job.attempts + 1, started_at=now, heartbeat_at=now, error=""
        )
    job.refresh_from_db()
    return job


def execute_job(job_id: int, *, worker: str = FOREGROUND, task_id: str | None = None,
                on_progress: Callable[[float, str], None] | None = None) -> Job | None:
    """Run one job to its end and record how it ended. Never raises for the job's own errors.

    ``task_id`` is the Celery message's id: a message that is not the job's own (a stale one left in a
    queue from another database, say) is ignored.
    """
    job = _claim(job_id, worker, task_id)
    if job is None:
        return Job.objects.filter(pk=job_id).first()
    ctx = JobContext(job, on_progress=on_progress)
    heartbeat = _Heartbeat(job.pk, ctx)
    heartbeat.start()
    try:
        spec = get_job_kind(job.kind)
        if job.attempts > 1:
            ctx.log(f"attempt {job.attempts}: the previous run was interrupted, starting again")
        result = spec.func(ctx, **job.arguments)
        _finish(job.pk, Job.Status.SUCCEEDED, progress=1.0, result=result if result is not None else {}, message=ctx.job.message or "done")
    except JobCancelled:
        _finish(job.pk, Job.Status.CANCELLED, message="cancelled while running")
    except KeyboardInterrupt:  # Ctrl-C on a foreground command
        _finish(job.pk, Job.Status.CANCELLED, message="interrupted")
        raise
    except Exception as exc:
        tail = traceback.format_exc()[-4000:]
        logger.warning("job %s (%s) failed: %s", job.pk, job.kind, exc)
        Job.objects.filter(pk=job.pk).update(log=(ctx.job.log + "\n" + tail)[-LOG_TAIL_CHARS:])
        _finish(job.pk, Job.Status.FAILED, error=f"{exc.__class__.__name__}: {exc}", message="failed")
    finally:
        heartbeat.stop.set()
        heartbeat.join(timeout=10)
    return Job.objects.get(pk=job.pk)


def recover_interrupted_jobs(worker: str) -> list[int]:
    """Re-queue the jobs that ``worker`` was running when it died (it has just started again)."""
    ids = []
    try:
        for job in Job.objects.filter(status=Job.Status.RUNNING, worker=worker):
            Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(status=Job.Status.QUEUED, message="re-queued after a worker restart")
            job.refresh_from_db()
            send_job(job)
            ids.append(job.pk)
    except Exception:  # a worker must start even when the database is not there yet
        logger.exception("could not recover the jobs of %s", worker)
    if ids:
        logger.warning("re-queued interrupted jobs %s of %s", ids, worker)
    return ids
