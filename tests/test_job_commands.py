"""Management commands that start jobs: foreground by default (same job code and Job row, progress bar),
``--enqueue`` for the workers."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.models import Job
from jobs.runner import cancel_job, enqueue_job, execute_job


def test_foreground_command_runs_the_job_through_a_job_row(make_image):
    make_image(), make_image()
    out = StringIO()
    call_command("verify_media", stdout=out)
    text = out.getvalue()
    assert "100.0%" in text and "checked 2 images: 0 missing, 0 corrupted" in text and "succeeded" in text
    job = Job.objects.get(kind="verify_media")
    assert job.status == "succeeded" and job.worker == "foreground" and job.result["checked"] == 2


def test_foreground_command_reports_a_missing_file(make_image):
    image = make_image()
    image.file.storage.delete(image.file.name)
    out = StringIO()
    call_command("verify_media", stdout=out)
    assert "1 missing" in out.getvalue()
    assert Job.objects.get(kind="verify_media").result["missing"] == [image.pk]


def test_foreground_command_failure_is_a_command_error(db):
    with pytest.raises(CommandError, match="there is no participant 'ghost'"):
        call_command("verify_media", "--participant", "ghost", stdout=StringIO())
    assert Job.objects.get(kind="verify_media").status == "failed"


def test_enqueue_prints_the_job_id_and_leaves_it_queued(db):
    out = StringIO()
    call_command("verify_media", "--enqueue", stdout=out)
    job = Job.objects.get(kind="verify_media")
    assert f"queued job {job.pk}" in out.getvalue() and job.status == "queued" and job.worker == ""


def test_unknown_job_kind_and_bad_arguments_are_refused(db):
    from jobs.registry import JobArgumentError

    with pytest.raises(JobArgumentError, match="unknown job kind 'nope'"):
        enqueue_job("nope", {})
    with pytest.raises(JobArgumentError, match="unknown arguments: colour"):
        enqueue_job("verify_media", {"colour": "red"})
    assert Job.objects.count() == 0


def test_cancelling_a_queued_job_ends_it_at_once(db):
    job, _ = enqueue_job("test_count", {"n": 3}, send=False)
    assert job.status == "queued"
    assert cancel_job(job).status == "cancelled"
    assert execute_job(job.pk).status == "cancelled"  # a late message does not revive it
