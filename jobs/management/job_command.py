"""Base class for management commands that start a job (``import_media``, ``snapshot``, ``train``...).

By default the job runs in the foreground, through the very same job code and Job row as in a worker,
with a progress bar on the terminal; ``--enqueue`` hands it to the workers and prints the job id.

Exit status: 0 when the job succeeded and refused nothing; non-zero (a CommandError) when it failed or
was cancelled, or when it refused any input file (``refused``: a command that takes files says which),
after ``report`` has printed each refused file with its reasons and every warning. With ``--enqueue``
the command returns at once: 0 means queued, not done.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from jobs.models import Job
from jobs.registry import JobArgumentError
from jobs.runner import BrokerUnavailable, enqueue_job, execute_job


class ProgressBar:
    def __init__(self, stream, width: int = 30):
        self.stream, self.width, self.last = stream, width, None

    def __call__(self, fraction: float, message: str) -> None:
        filled = int(round(fraction * self.width))
        line = f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {message[:60]:<60}"
        if line != self.last:
            self.stream.write(line)
            self.stream.flush()
            self.last = line

    def close(self) -> None:
        if self.last is not None:
            self.stream.write("\n")


EXIT_STATUS = ("Exit status: 0 when the job succeeded and refused no input; 1 when it failed, was cancelled or refused "
               "any input file (each is printed with its reasons, and every warning, before the summary). With --enqueue "
               "the command returns at once with 0 and the job id: the job's outcome is then at /api/jobs/ID/.")


@contextmanager
def _job_log_quiet(quiet: bool):
    """Keep the job's log lines (``ctx.log``, logged at INFO) off the terminal while ``quiet``: they stay in
    the Job row, and the command prints the same things once in its report."""
    job_logger = logging.getLogger("nailset.jobs")
    previous = job_logger.level
    if quiet:
        job_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        job_logger.setLevel(previous)


class JobCommand(BaseCommand):
    job_kind: str = ""
    echo_job_log: bool = True   # False: the report prints everything the log says; log lines only with -v 2

    def add_arguments(self, parser):
        parser.add_argument("--enqueue", action="store_true",
                            help="hand the job to the Celery workers, print its id and exit at once with status 0 "
                                 "(the outcome is not awaited: follow it at /api/jobs/ID/)")
        parser.epilog = EXIT_STATUS
        self.add_job_arguments(parser)

    def add_job_arguments(self, parser):
        """Subclasses add their own options here."""

    def job_arguments(self, options) -> dict:
        """Subclasses turn parsed options into the job's JSON arguments."""
        return {}

    def report(self, job: Job) -> None:
        """Subclasses may print the result in their own words: warnings and refused inputs first, the summary last."""
        self.stdout.write(f"result: {job.result}")

    def refused(self, result: dict) -> list:
        """The input files a succeeded job refused (subclasses that take files say which); any makes the
        command exit non-zero."""
        return []

    def handle(self, *args, **options):
        try:
            job, created = enqueue_job(self.job_kind, self.job_arguments(options), send=options["enqueue"])
        except JobArgumentError as exc:
            raise CommandError(str(exc)) from exc
        except BrokerUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if not created:
            raise CommandError(f"the same job is already {job.status} as job {job.pk}")
        if options["enqueue"]:
            self.stdout.write(f"queued job {job.pk} ({job.kind}) on queue {job.queue}; follow it at /api/jobs/{job.pk}/")
            return
        bar = ProgressBar(self.stdout if options.get("verbosity", 1) >= 1 else open("/dev/null", "w"))
        try:
            with _job_log_quiet(not self.echo_job_log and options.get("verbosity", 1) < 2):
                job = execute_job(job.pk, on_progress=bar)
        finally:
            bar.close()
        if job.status == Job.Status.SUCCEEDED:
            self.report(job)
            refused = self.refused(job.result or {})
            if refused:
                raise CommandError(f"job {job.pk} finished, but {len(refused)} input file(s) were refused (listed above)")
            self.stdout.write(self.style.SUCCESS(f"job {job.pk} succeeded"))
        else:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or job.message}")
