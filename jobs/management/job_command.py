"""Base class for management commands that start a job (``import_media``, ``snapshot``, ``train``...).

By default the job runs in the foreground, through the very same job code and Job row as in a worker,
with a progress bar on the terminal; ``--enqueue`` hands it to the workers and prints the job id.
"""
from __future__ import annotations

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


class JobCommand(BaseCommand):
    job_kind: str = ""

    def add_arguments(self, parser):
        parser.add_argument("--enqueue", action="store_true", help="hand the job to the Celery workers and print its id")
        self.add_job_arguments(parser)

    def add_job_arguments(self, parser):
        """Subclasses add their own options here."""

    def job_arguments(self, options) -> dict:
        """Subclasses turn parsed options into the job's JSON arguments."""
        return {}

    def report(self, job: Job) -> None:
        """Subclasses may print the result in their own words."""
        self.stdout.write(f"result: {job.result}")

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
            job = execute_job(job.pk, on_progress=bar)
        finally:
            bar.close()
        if job.status == Job.Status.SUCCEEDED:
            self.report(job)
            self.stdout.write(self.style.SUCCESS(f"job {job.pk} succeeded"))
        else:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or job.message}")
