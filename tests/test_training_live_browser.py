"""Training pages that follow a run live.

* With a real Celery worker on the training queue and headless Chromium: an admin presses Start on
  /training/, the run is listed at once (no reload), its page draws the loss and mIoU curves from the first
  epoch while the run goes, with sane axes, and Cancel disappears when it ends; a second run is cancelled
  from its page.
* Without a browser: the API lists a run as soon as it is started (queued), with its live figures (ETA,
  images/s); a failed run's page shows the error and no Cancel.
* The chart axes and progress words (training/static/training/charts.js, live.js) on Node's test runner.
"""
import shutil
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import Job
from ml.train_presets import DEFAULT_TRAIN_PRESET
from tests.browser import login
from tests.conftest import make_user, wait_for
from tests.test_training_job import nail_snapshot
from tests.worker import start_worker, stop_worker
from training.models import ModelVersion, TrainingRun
from training.runs import PROGRESS_SPAN, PROGRESS_START, live_stats

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1300, "height": 900}


def test_chart_axes_and_progress_words_on_node():
    node = shutil.which("node")
    assert node, "Node.js is not installed (needed for the JS unit tests): run `make test`"
    result = subprocess.run([node, "--test", "tests/js/training_charts.test.mjs"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "# fail 0" in result.stdout, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.django_db
def test_a_started_run_is_listed_at_once_with_its_live_figures(client_for):
    nail_snapshot("live", participants=2, per_participant=1)
    admin = client_for("admin")
    started = admin.post("/api/training-runs/", {"snapshot": "live", "preset": "tiny", "epochs": 3}, format="json")
    assert started.status_code == 202, started.content
    run = TrainingRun.objects.get()  # made with the job, before any worker took it
    assert started.json()["training_run"] == run.pk and run.job_id == started.json()["id"]
    assert run.config["epochs"] == 3 and run.preset == "tiny" and run.snapshot.name == "live"
    listed = client_for("reviewer").get("/api/training-runs/").json()["results"]
    assert [(r["id"], r["status"]) for r in listed] == [(run.pk, "queued")]
    assert listed[0]["live"] == {"epochs_done": 0, "epochs": 3, "fraction": 0.0, "elapsed_seconds": None,
                                 "eta_seconds": None, "images_per_second": None}
    again = admin.post("/api/training-runs/", {"snapshot": "live", "preset": "tiny", "epochs": 3}, format="json")
    assert again.status_code == 409 and again.json()["training_run"] == run.pk and TrainingRun.objects.count() == 1

    # Half way through (tiny preset: 30 steps of 8 images an epoch) after 100 s: 100 s left, 3.6 images/s.
    now = timezone.now()
    Job.objects.filter(pk=run.job_id).update(status="running", started_at=now - timedelta(seconds=100),
                                              progress=PROGRESS_START + PROGRESS_SPAN * 0.5)
    run.refresh_from_db()
    assert live_stats(run, now=now) == {"epochs_done": 0, "epochs": 3, "fraction": 0.5, "elapsed_seconds": 100.0,
                                        "eta_seconds": 100.0, "images_per_second": 3.6}


@pytest.mark.django_db
def test_the_run_page_matches_the_state(users):
    nail_snapshot("ended", participants=2, per_participant=1)
    from curation.models import Snapshot

    snapshot = Snapshot.objects.get(name="ended")
    failed_job = Job.objects.create(kind="train", key="train:failed", status="failed", error="CUDA out of memory",
                                    started_at=timezone.now(), finished_at=timezone.now())
    failed = TrainingRun.objects.create(snapshot=snapshot, preset="tiny", job=failed_job, config={"epochs": 1})
    running_job = Job.objects.create(kind="train", key="train:running", status="running", started_at=timezone.now())
    running = TrainingRun.objects.create(snapshot=snapshot, preset="tiny", job=running_job, config={"epochs": 2})
    admin = Client()
    admin.force_login(users["admin"])
    page = admin.get(f"/training/runs/{failed.pk}/").content.decode()
    assert "CUDA out of memory" in page and 'id="cancel" hidden' in page
    assert 'id="cancel">' in admin.get(f"/training/runs/{running.pk}/").content.decode()
    reviewer = Client()
    reviewer.force_login(users["reviewer"])  # cannot cancel jobs: no Cancel at all
    assert 'id="cancel"' not in reviewer.get(f"/training/runs/{running.pk}/").content.decode()


def _watch(page):
    """Script errors and every 4xx/5xx answer the page gets."""
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    return problems


def _ticks(page, chart):
    return page.eval_on_selector_all(f"#{chart} text", "els => els.map((e) => e.textContent)")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_start_a_run_and_watch_it_live_in_chromium(browser, live_server, tmp_path):
    make_user("boss", "admin")
    nail_snapshot("live")
    worker = start_worker("training-live@localhost", queues="training")
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        problems = _watch(page)
        login(page, live_server.url, "boss", "boss-password-123")
        page.goto(f"{live_server.url}/training/")
        expect(page.locator("#runs")).to_contain_text("No training run yet.")
        page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
        expect(page.locator("#preset")).to_have_value(DEFAULT_TRAIN_PRESET)  # a measured preset unless one is picked
        page.select_option("#preset", "tiny")
        page.fill("input[name=epochs]", "3")
        page.click("#start-training button")
        expect(page.locator("#start-status")).to_contain_text("queued on the training queue", timeout=30_000)
        row = page.locator("#runs tr[data-run]")
        expect(row).to_have_count(1)  # at once, without a reload
        assert page.evaluate("() => window.sameDocument") is True
        run = TrainingRun.objects.get()
        expect(row).to_have_attribute("data-run", str(run.pk))
        expect(row.locator(".status-chip")).to_have_text("running", timeout=60_000)  # the poll follows it
        expect(row.locator(".run-progress")).to_contain_text("epoch 0 of 3 done")

        row.locator("a").first.click()
        page.wait_for_url(f"{live_server.url}/training/runs/{run.pk}/")
        expect(page.locator("#cancel")).to_be_visible()
        # While it runs, the first epoch's point appears on both charts (no reload).
        page.wait_for_function("""() => document.getElementById("status").textContent === "running"
            && document.querySelectorAll("#loss-chart circle").length >= 1
            && document.querySelectorAll("#miou-chart g[data-series='val mIoU'] circle").length >= 1""", timeout=120_000)
        page.screenshot(path=str(tmp_path / "run-live.png"))
        expect(page.locator("#live")).to_contain_text(" of 3 done")
        expect(page.locator("#live")).to_contain_text("images/s")
        assert page.eval_on_selector_all("#miou-chart .x-tick", "els => els.map((e) => e.textContent)") == ["1", "2", "3"]
        miou_labels = _ticks(page, "miou-chart")
        assert {"0", "0.25", "0.5", "0.75", "1"} <= set(miou_labels) and "1.478" not in miou_labels

        expect(page.locator("#status")).to_have_text("succeeded", timeout=180_000)
        expect(page.locator("#cancel")).to_be_hidden()
        version = ModelVersion.objects.get(run=run)
        expect(page.locator("#model-link")).to_have_text(version.name)
        expect(page.locator("#live")).to_contain_text("took")
        assert page.locator("#loss-chart circle").count() == 3
        loss_axis = [float(t) for t in page.eval_on_selector_all(
            "#loss-chart text[text-anchor=end]", "els => els.map((e) => e.textContent)")]
        losses = [e["train_loss"] for e in TrainingRun.objects.get(pk=run.pk).history]
        assert loss_axis[0] == 0 and max(losses) <= loss_axis[-1] <= 1.5 * max(losses)
        page.screenshot(path=str(tmp_path / "run-done.png"))
        page.click(".crumbs a")
        expect(page.locator(f"#runs tr[data-run='{run.pk}'] .status-chip")).to_have_text("succeeded")
        expect(page.locator(f"#runs tr[data-run='{run.pk}']")).to_contain_text(version.name)
        page.screenshot(path=str(tmp_path / "training.png"), full_page=True)

        # A long run, cancelled from its page: Cancel goes once it has stopped.
        page.select_option("#preset", "tiny")
        page.fill("input[name=epochs]", "200")
        page.click("#start-training button")
        expect(page.locator("#runs tr[data-run]")).to_have_count(2)
        second = TrainingRun.objects.exclude(pk=run.pk).get()
        page.goto(f"{live_server.url}/training/runs/{second.pk}/")
        expect(page.locator("#status")).to_have_text("running", timeout=60_000)
        page.click("#cancel")
        expect(page.locator("#status")).to_have_text("cancelled", timeout=60_000)
        expect(page.locator("#cancel")).to_be_hidden()
        assert page.locator("#miou-chart .x-tick").last.text_content() != "200"  # the axis shows what was done
        assert problems == [], problems
        context.close()
        wait_for(lambda: not Job.objects.filter(status__in=Job.ACTIVE).exists(), timeout=30, message="the jobs to end")
    finally:
        stop_worker(worker, sig=signal.SIGKILL)
