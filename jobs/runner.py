"""Starting, running, cancelling and recovering jobs.

The same ``execute_job`` runs a job inside a Celery worker (``jobs.tasks.run_job``) and in the
foreground of a management command, so both report progress through the same Job row.

Cancellation is cooperative: ``cancel_job`` marks the row; the running job sees it at its next
``ctx.progress``/``ctx.log``/``ctx.check_cancelled`` call (a heartbeat thread polls the row) and stops.
A worker that dies mid-job leaves the row ``running`` with a heartbeat that stops moving. Such a job is
taken over (``reap_stale_jobs``) once its heartbeat is older than ``NAILSET_JOB_STALE_SECONDS``, whatever
its worker's name: by every worker at start-up and periodically (``start_stale_job_reaper``), and by a
request to start the same work again (``enqueue_job``). Taking over re-queues the job under a new message
id (so an old redelivered message is ignored), or fails it once it has run ``NAILSET_JOB_MAX_ATTEMPTS``
times; the job's log and message say which. A worker starting again under the same name re-queues its
own running jobs at once (``recover_interrupted_jobs``). A queued job has no heartbeat and is never reaped.
A run whose job was taken over while it still lived notices at its next heartbeat and stops, writing
nothing more (every write of a run is tied to its attempt number).
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
from django.db.models import Q
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
    False and nothing new is queued, except when it is running with a stale heartbeat (its worker is
    gone): it is taken over first, and either re-queued for this request (returned with ``created`` True)
    or, when it ran too often, failed so that a new job starts. With ``send=False`` the row is only
    created (foreground commands) and a taken-over job is handed to the caller instead of the workers.
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
        if existing.status == Job.Status.RUNNING and _is_stale(existing, _stale_before()):
            taken = _take_over(existing.pk, "the same work was asked for again", send=send, fail_foreground=False)
            if taken is not None and taken.status == Job.Status.QUEUED:
                return taken, True
            if taken is not None:  # failed or cancelled: its key is free for a new job
                return enqueue_job(kind, arguments, user=user, send=send)
            existing.refresh_from_db()
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


def _finish(job_id: int, status: str, *, attempt: int | None = None, **fields) -> None:
    """End the job. With ``attempt``, only if that run still holds it (it was not taken over)."""
    _rows(job_id, attempt).update(status=status, finished_at=timezone.now(), **fields)


def _rows(job_id: int, attempt: int | None = None):
    """The job's row; with ``attempt``, only while that run of it is the one running."""
    rows = Job.objects.filter(pk=job_id)
    return rows if attempt is None else rows.filter(status=Job.Status.RUNNING, attempts=attempt)


class JobContext:
    """What a job kind sees of its Job row: progress, log lines and cancellation."""

    def __init__(self, job: Job, on_progress: Callable[[float, str], None] | None = None):
        self.job = job
        self.attempt = job.attempts
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self.lost = threading.Event()  # the job was taken over by another run: stop, write nothing more
        self._last_write = 0.0
        self._log_lines: list[str] = [job.log] if job.log else []
        self.finished = False  # set by succeed(): the row is final, nothing more is written to it

    @property
    def arguments(self) -> dict:
        return self.job.arguments

    def cancel_seen(self) -> None:
        self._cancelled.set()

    def lost_seen(self) -> None:
        if not self.lost.is_set():
            logger.warning("job %s was taken over by another run; attempt %s stops", self.job.pk, self.attempt)
        self.lost.set()
        self._cancelled.set()

    def update_row(self, **fields) -> None:
        """Write to the job's row while this run holds it. Nothing written because the row is held by another
        run (or finished) means the job was taken over. A row this connection cannot see at all (a thread's
        connection outside the transaction that created it, as in tests) is not a takeover. After
        :meth:`succeed` nothing is written."""
        if self.finished:
            return
        if not _rows(self.job.pk, self.attempt).update(**fields) and Job.objects.filter(pk=self.job.pk).exists():
            self.lost_seen()

    def succeed(self, result: dict, message: str = "done") -> None:
        """Record the job as succeeded with ``result`` now, in the caller's database transaction, for a job
        whose result must commit together with what it checked under a lock (a snapshot export written to a
        folder, which an erasure must either stop or find: curation/transfer.py). The run goes on to its
        end, but once that transaction commits the row is final: progress and log lines are no longer written,
        and the runner leaves it. A run that no longer holds the row (taken over) raises ``JobCancelled``, so the
        caller's transaction rolls back and its output is removed."""
        written = _rows(self.job.pk, self.attempt).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now(),
                                                          progress=1.0, result=result, message=message[:500])
        if not written and Job.objects.filter(pk=self.job.pk).exists():  # taken over (see update_row): this
            # run's result must not commit, or an erasure after it would not find the export
            self.lost_seen()
            raise JobCancelled("the job was taken over by another run")
        transaction.on_commit(lambda: setattr(self, "finished", True))

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
            self.update_row(**fields)
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
        self.update_row(log=text, heartbeat_at=timezone.now())
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
                try:
                    self.ctx.update_row(heartbeat_at=timezone.now())
                    if Job.objects.filter(pk=self.job_id, cancel_requested_at__isnull=False).exists():
                        self.ctx.cancel_seen()
                except Exception:  # a database hiccup must neither kill the job's thread nor end the heartbeat
                    logger.exception("heartbeat of job %s failed", self.job_id)
                    connection.close()
        finally:
            connection.close()


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.NAILSET_JOB_STALE_SECONDS)


def _is_stale(job: Job, stale_before) -> bool:
    heartbeat = job.heartbeat_at or job.started_at
    return heartbeat is None or heartbeat <= stale_before


def _with_log_line(log: str, line: str) -> str:
    return ((log + "\n" if log else "") + f"[{timezone.now():%Y-%m-%d %H:%M:%S}] {line}")[-LOG_TAIL_CHARS:]


def _take_over(job_id: int, cause: str, *, send: bool = True, fail_foreground: bool = True,
               check_stale: bool = True) -> Job | None:
    """Take a running job away from the run that holds it (its worker is gone). Returns the job as it is
    now, or None when it was not running (or, with ``check_stale``, its heartbeat is fresh again).

    The job is re-queued under a new message id, sent to the workers (``send``) or left for the calling
    command to run; it is failed instead when it has run ``NAILSET_JOB_MAX_ATTEMPTS`` times, or when a
    foreground command held it (``fail_foreground``: its terminal is gone), and cancelled when a cancel
    had been asked for. The log and the message say what happened and why."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, status=Job.Status.RUNNING).first()
        if job is None or (check_stale and not _is_stale(job, _stale_before())):
            return None
        now = timezone.now()
        heartbeat = job.heartbeat_at or job.started_at
        silent = f"no heartbeat from {job.worker or 'its worker'} for {(now - heartbeat).total_seconds():.0f} s" if heartbeat else \
            f"no heartbeat from {job.worker or 'its worker'}"
        what = f"attempt {job.attempts} was lost ({silent}; {cause})"
        limit = settings.NAILSET_JOB_MAX_ATTEMPTS
        if job.cancel_requested_at:
            fields = {"status": Job.Status.CANCELLED, "finished_at": now, "message": "cancelled (its worker was lost)"}
            line = f"{what}; it was being cancelled, so it ends cancelled"
        elif fail_foreground and job.worker == FOREGROUND:
            fields = {"status": Job.Status.FAILED, "finished_at": now, "message": "failed: the command running it stopped",
                      "error": f"the command running it in the foreground stopped ({silent}); start it again"}
            line = f"{what}; a foreground command ran it, so it is failed"
        elif job.attempts >= limit:
            fields = {"status": Job.Status.FAILED, "finished_at": now, "message": "failed: its worker was lost too often",
                      "error": f"its worker was lost {job.attempts} times (NAILSET_JOB_MAX_ATTEMPTS={limit}); last: {silent}"}
            line = f"{what}; it has run {job.attempts} of {limit} times, so it is failed"
        else:
            fields = {"status": Job.Status.QUEUED, "celery_task_id": str(uuid.uuid4()), "worker": "" if send else FOREGROUND,
                      "message": f"re-queued after its worker was lost (attempt {job.attempts + 1} of {limit} next)"}
            line = f"{what}; re-queued" + ("" if send else " for a foreground command")
        Job.objects.filter(pk=job.pk).update(log=_with_log_line(job.log, line), **fields)
    logger.warning("job %s (%s): %s", job.pk, job.kind, line)
    job.refresh_from_db()
    if job.status == Job.Status.QUEUED and send:
        transaction.on_commit(lambda: send_job(job))
    return job


def reap_stale_jobs() -> list[int]:
    """Take over every running job whose heartbeat is older than ``NAILSET_JOB_STALE_SECONDS``, whatever
    worker held it: re-queued, or failed after ``NAILSET_JOB_MAX_ATTEMPTS``. Returns their ids."""
    stale = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lte=_stale_before()) | Q(heartbeat_at__isnull=True, started_at__lte=_stale_before())
        | Q(heartbeat_at__isnull=True, started_at__isnull=True))
    taken = []
    for job_id in stale.values_list("pk", flat=True):
        try:
            if _take_over(job_id, "found by the stale-job reaper") is not None:
                taken.append(job_id)
        except BrokerUnavailable:  # send_job has failed the job and said why
            logger.exception("could not re-queue stale job %s", job_id)
            taken.append(job_id)
    return taken


class StaleJobReaper(threading.Thread):
    """Runs ``reap_stale_jobs`` now and then every ``interval`` seconds, inside a worker process."""

    def __init__(self, interval: float | None = None):
        super().__init__(daemon=True, name="stale-job-reaper")
        self.interval = interval or max(1.0, settings.NAILSET_JOB_STALE_SECONDS / 4)
        self.stop = threading.Event()

    def run(self):
        while True:
            try:
                reap_stale_jobs()
            except Exception:  # the database may be away for a while; try again next round
                logger.exception("the stale-job reaper failed")
            finally:
                connection.close()
            if self.stop.wait(self.interval):
                return


_reaper: StaleJobReaper | None = None


def start_stale_job_reaper() -> StaleJobReaper:
    """Start this process's reaper thread once (workers call it when they are ready)."""
    global _reaper
    if _reaper is None or not _reaper.is_alive():
        _reaper = StaleJobReaper()
        _reaper.start()
    return _reaper


def stop_stale_job_reaper() -> None:
    if _reaper is not None:
        _reaper.stop.set()


def _claim(job_id: int, worker: str, task_id: str | None) -> Job | None:
    """Mark the job running for this worker, or return None when it is not ours to run."""
    stale_before = _stale_before()
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
            if job.attempts >= settings.NAILSET_JOB_MAX_ATTEMPTS:
                transaction.on_commit(lambda: _take_over(job_id, f"its message came again to {worker}"))
                return None
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
        _finish(job.pk, Job.Status.SUCCEEDED, attempt=ctx.attempt, progress=1.0, result=result if result is not None else {},
                message=ctx.job.message or "done")
    except JobCancelled:
        _finish(job.pk, Job.Status.CANCELLED, attempt=ctx.attempt, message="cancelled while running")
    except KeyboardInterrupt:  # Ctrl-C on a foreground command
        _finish(job.pk, Job.Status.CANCELLED, attempt=ctx.attempt, message="interrupted")
        raise
    except Exception as exc:
        tail = traceback.format_exc()[-4000:]
        logger.warning("job %s (%s) failed: %s", job.pk, job.kind, exc)
        _rows(job.pk, ctx.attempt).update(log=(ctx.job.log + "\n" + tail)[-LOG_TAIL_CHARS:])
        _finish(job.pk, Job.Status.FAILED, attempt=ctx.attempt, error=f"{exc.__class__.__name__}: {exc}", message="failed")
    finally:
        heartbeat.stop.set()
        heartbeat.join(timeout=10)
    return Job.objects.get(pk=job.pk)


def recover_interrupted_jobs(worker: str) -> list[int]:
    """Re-queue the jobs that ``worker`` was running when it died (it has just started again), at once:
    their heartbeats need not be stale yet."""
    ids = []
    try:
        for job_id in Job.objects.filter(status=Job.Status.RUNNING, worker=worker).values_list("pk", flat=True):
            if _take_over(job_id, f"{worker} started again", check_stale=False) is not None:
                ids.append(job_id)
    except Exception:  # a worker must start even when the database is not there yet
        logger.exception("could not recover the jobs of %s", worker)
    if ids:
        logger.warning("re-queued interrupted jobs %s of %s", ids, worker)
    return ids
