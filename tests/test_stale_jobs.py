"""Stale jobs (issue #13, row 11): a running job whose worker was SIGKILLed is taken over by a worker of any
name, and asking for the same work again takes it over instead of answering 409 for ever.

The worker tests run real Celery workers (tests/worker.py) on the configured broker: the filesystem broker
in embedded mode, Redis with DATABASE_URL/CELERY_BROKER_URL set. Workers get NAILSET_JOB_STALE_SECONDS=5.
"""
import signal
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.runner import FOREGROUND, JobCancelled, JobContext, enqueue_job, reap_stale_jobs
from tests.conftest import wait_for
from tests.worker import start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True)]
WORK = {"n": 40, "delay": 0.1}  # about 4 s of counting on the "test-isolated" queue


@pytest.fixture(autouse=True)
def stale_after_five_seconds(settings):
    settings.NAILSET_JOB_STALE_SECONDS = 5  # as the tests' workers have it
    settings.NAILSET_JOB_MAX_ATTEMPTS = 3


def row(job_id) -> Job:
    return Job.objects.get(pk=job_id)


def killed_mid_job(hostname: str, arguments: dict) -> Job:
    """Start a worker, let it get under way with a job, SIGKILL it: the row is left running."""
    process = start_worker(hostname, queues="test-isolated")
    try:
        job, created = enqueue_job("test_count_isolated", arguments)
        assert created
        wait_for(lambda: row(job.pk).progress > 0.1, timeout=60, message="the job to be under way")
    finally:
        stop_worker(process, sig=signal.SIGKILL)
    assert row(job.pk).status == "running"
    return job


@pytest.mark.worker
def test_a_worker_of_another_name_takes_over_a_job_whose_worker_was_killed():
    job = killed_mid_job("doomed@localhost", WORK)
    process = start_worker("rescuer@localhost", queues="test-isolated")
    try:
        done = wait_for(lambda: row(job.pk).status in ("succeeded", "failed") and row(job.pk), timeout=90,
                        message="the job to be taken over and finish")
    finally:
        stop_worker(process)
    assert done.status == "succeeded" and done.result == {"counted": 40}
    assert done.worker == "rescuer@localhost" and done.attempts == 2
    assert "attempt 1 was lost (no heartbeat from doomed@localhost for" in done.log and "re-queued" in done.log


@pytest.mark.worker
def test_after_too_many_attempts_the_job_is_failed_with_the_reason():
    job = killed_mid_job("doomed-again@localhost", WORK)
    process = start_worker("strict@localhost", queues="test-isolated", env={"NAILSET_JOB_MAX_ATTEMPTS": "1"})
    try:
        done = wait_for(lambda: row(job.pk).status in ("succeeded", "failed", "queued") and row(job.pk), timeout=60,
                        message="the stale job to be reaped")
    finally:
        stop_worker(process)
    assert done.status == "failed" and done.message == "failed: its worker was lost too often"
    assert done.error.startswith("its worker was lost 1 times (NAILSET_JOB_MAX_ATTEMPTS=1); last: no heartbeat from doomed-again@localhost")
    assert "it has run 1 of 1 times, so it is failed" in done.log


@pytest.mark.worker
def test_asking_again_for_work_whose_worker_died_takes_it_over_instead_of_409(client_for):
    job = killed_mid_job("gone@localhost", WORK)
    client = client_for("admin")
    body = {"kind": "test_count_isolated", "arguments": WORK}
    alive_looking = client.post("/api/jobs/", body, format="json")
    if row(job.pk).heartbeat_at > timezone.now() - timedelta(seconds=4):  # still fresh: it may be alive
        assert alive_looking.status_code == 409 and alive_looking.json()["job"]["id"] == job.pk
    wait_for(lambda: row(job.pk).heartbeat_at < timezone.now() - timedelta(seconds=5.5), timeout=20,
             message="the heartbeat to go stale")
    again = client.post("/api/jobs/", body, format="json")
    assert again.status_code == 202, again.json()
    assert again.json()["id"] == job.pk and again.json()["status"] == "queued"  # the same job, re-queued
    taken = row(job.pk)
    assert taken.celery_task_id != job.celery_task_id and taken.message.startswith("re-queued after its worker was lost")
    assert "the same work was asked for again" in taken.log
    process = start_worker("next@localhost", queues="test-isolated", purge=False)
    try:
        done = wait_for(lambda: row(job.pk).status in ("succeeded", "failed") and row(job.pk), timeout=60,
                        message="the re-queued job to finish")
    finally:
        stop_worker(process)
    assert done.status == "succeeded" and done.attempts == 2 and done.worker == "next@localhost"


def running_job(seconds_since_heartbeat: float, **fields) -> Job:
    now = timezone.now()
    heartbeat = now - timedelta(seconds=seconds_since_heartbeat)
    values = {"kind": "test_count_isolated", "key": f"test:{uuid.uuid4()}", "arguments": {"n": 1, "delay": 0},
              "queue": "test-isolated", "status": "running", "started_at": heartbeat, "heartbeat_at": heartbeat,
              "attempts": 1, "worker": "somewhere@else", "celery_task_id": str(uuid.uuid4()), **fields}
    return Job.objects.create(**values)


def test_the_reaper_takes_only_running_jobs_with_a_stale_heartbeat():
    fresh = running_job(1)
    queued_long_ago = running_job(3600, status="queued")  # a re-queued job keeps its old heartbeat
    stale = running_job(30)
    assert reap_stale_jobs() == [stale.pk]
    assert row(fresh.pk).status == "running" and row(queued_long_ago.pk).status == "queued"
    stale_now = row(stale.pk)
    assert stale_now.status == "queued" and stale_now.worker == "" and stale_now.celery_task_id != stale.celery_task_id
    assert "attempt 1 was lost (no heartbeat from somewhere@else for 30 s; found by the stale-job reaper); re-queued" in stale_now.log


def test_the_reaper_fails_worn_out_and_foreground_jobs_and_ends_cancelled_ones():
    worn = running_job(30, attempts=3)
    foreground = running_job(30, worker=FOREGROUND)
    cancelling = running_job(30, cancel_requested_at=timezone.now())
    assert sorted(reap_stale_jobs()) == sorted([worn.pk, foreground.pk, cancelling.pk])
    assert row(worn.pk).status == "failed" and "NAILSET_JOB_MAX_ATTEMPTS=3" in row(worn.pk).error
    assert row(foreground.pk).status == "failed" and row(foreground.pk).message == "failed: the command running it stopped"
    assert row(cancelling.pk).status == "cancelled" and row(cancelling.pk).finished_at is not None


def test_a_run_whose_job_was_taken_over_stops_and_writes_nothing_more():
    job = running_job(0)
    ctx = JobContext(job)
    ctx.progress(0.2, "step 1")
    assert row(job.pk).message == "step 1"
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2, worker="newcomer@localhost", message="attempt 2")
    with pytest.raises(JobCancelled):
        ctx.progress(0.4, "step 2 of the lost run")
    assert ctx.lost.is_set() and row(job.pk).message == "attempt 2" and row(job.pk).progress == 0.2


@pytest.mark.worker
def test_a_taken_over_run_cannot_record_itself_succeeded():
    """``JobContext.succeed`` (an export that must commit its result with what it checked: curation/transfer.py)
    on a row another run holds writes nothing and raises, so the caller's transaction rolls back."""
    from django.db import transaction

    job = running_job(0)
    ctx = JobContext(job)
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2, worker="newcomer@localhost", message="attempt 2")
    with pytest.raises(JobCancelled), transaction.atomic():
        ctx.succeed({"size": 1}, "done by the lost run")
    assert ctx.lost.is_set() and not ctx.finished
    assert row(job.pk).status == "running" and row(job.pk).message == "attempt 2" and row(job.pk).result in (None, {})

    mine = running_job(0)
    held = JobContext(mine)
    with transaction.atomic():
        held.succeed({"size": 2}, "done")
        assert not held.finished  # final once the transaction commits
    assert held.finished and row(mine.pk).status == "succeeded" and row(mine.pk).result == {"size": 2}
