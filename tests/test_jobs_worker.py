"""Jobs end to end through a real Celery worker on the real broker (Redis in CI, the filesystem broker
in embedded mode) and the real test database."""
import signal

import pytest

from jobs.models import Job
from jobs.runner import enqueue_job
from tests.conftest import wait_for
from tests.worker import running_worker, start_worker, stop_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        with running_worker("jobs-test@localhost", queues="default") as process:
            yield process


def job_status(job_id):
    return Job.objects.get(pk=job_id)


def wait_for_status(job_id, *statuses, timeout=60):
    return wait_for(lambda: (job := job_status(job_id)).status in statuses and job, timeout=timeout,
                    message=f"job {job_id} to become {statuses}")


def test_real_job_runs_end_to_end_with_progress_and_result(worker, client_for, make_image):
    images = [make_image() for _ in range(3)]
    response = client_for("admin").post("/api/jobs/", {"kind": "verify_media", "arguments": {}}, format="json")
    assert response.status_code == 202, response.json()
    job = wait_for_status(response.json()["id"], "succeeded", "failed")
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0 and job.message == "checked 3 of 3 images"
    assert job.result == {"checked": len(images), "missing": [], "corrupted": [], "ok": True}
    assert job.worker == "jobs-test@localhost" and job.attempts == 1 and job.finished_at >= job.started_at
    polled = client_for("admin").get(f"/api/jobs/{job.pk}/").json()
    assert polled["status"] == "succeeded" and polled["cancel_url"] is None


def test_progress_is_visible_while_running(worker):
    job, _ = enqueue_job("test_count", {"n": 30, "delay": 0.1})
    seen = wait_for(lambda: 0 < job_status(job.pk).progress < 1 and job_status(job.pk), message="partial progress")
    assert seen.status == "running" and seen.message.startswith("counted ")
    assert wait_for_status(job.pk, "succeeded").result == {"counted": 30}


def test_a_job_that_raises_ends_failed_with_the_error(worker, client_for):
    response = client_for("admin").post("/api/jobs/", {"kind": "verify_media", "arguments": {"participant": "nobody"}}, format="json")
    job = wait_for_status(response.json()["id"], "succeeded", "failed")
    assert job.status == "failed"
    assert job.error == "ValueError: there is no participant 'nobody'"
    assert "Traceback" in job.log


def test_cancelling_a_running_job_stops_it(worker, client_for):
    job, _ = enqueue_job("test_count", {"n": 200, "delay": 0.05})
    wait_for(lambda: job_status(job.pk).progress > 0, message="the job to start counting")
    response = client_for("admin").post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 202
    stopped = wait_for_status(job.pk, "cancelled", "succeeded", timeout=20)
    assert stopped.status == "cancelled" and stopped.progress < 1
    assert client_for("admin").post(f"/api/jobs/{job.pk}/cancel/").status_code == 409  # already ended


def test_the_same_job_cannot_run_twice_at_once(worker, client_for):
    client = client_for("admin")
    first = client.post("/api/jobs/", {"kind": "test_count", "arguments": {"n": 40, "delay": 0.05}}, format="json")
    second = client.post("/api/jobs/", {"kind": "test_count", "arguments": {"delay": 0.05, "n": 40}}, format="json")
    assert first.status_code == 202 and second.status_code == 409
    assert second.json()["job"]["id"] == first.json()["id"]
    wait_for_status(first.json()["id"], "succeeded")
    third = client.post("/api/jobs/", {"kind": "test_count", "arguments": {"n": 40, "delay": 0.05}}, format="json")
    assert third.status_code == 202  # once the first has ended the same work may run again
    wait_for_status(third.json()["id"], "succeeded")


def test_a_job_survives_a_worker_killed_mid_run(django_db_blocker):
    """SIGKILL the worker while the job runs; the worker comes back under its name and finishes it."""
    hostname = "restart-test@localhost"
    process = start_worker(hostname, queues="test-isolated")
    try:
        job, _ = enqueue_job("test_count_isolated", {"n": 40, "delay": 0.1})
        wait_for(lambda: job_status(job.pk).progress > 0.1, message="the job to be under way")
        stop_worker(process, sig=signal.SIGKILL)
        assert job_status(job.pk).status == "running"  # the row still says running: its worker is gone
        process = start_worker(hostname, queues="test-isolated", purge=False)
        done = wait_for_status(job.pk, "succeeded", "failed", timeout=60)
        assert done.status == "succeeded" and done.result == {"counted": 40}
        assert done.attempts == 2 and "interrupted" in done.log
    finally:
        stop_worker(process)
