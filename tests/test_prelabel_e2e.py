"""The pre-labeling loop end to end, with a real Celery worker and headless Chromium.

A participant uploads a photo with their upload token; the ingest job (default queue) ends by queueing a
prelabel job (prelabel queue) because a tiny model is active (promoted through the gate); the worker
writes the model's draft. An annotator takes the image from the queue, finds it pre-filled, drags one
vertex and submits. The correction metrics record exactly that edit (and the time from open to submit);
a reviewer sees the prediction on the review page with its IoU against the human labels, and on the
prediction page the probability overlay with that IoU and what the human changed.
"""
import io
import math
import signal

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.test import APIClient

from jobs.models import Job
from labeling.models import Annotation, AnnotationRevision, Participant
from prelabel.models import Prediction
from prelabel.promotion import promote
from tests.browser import login
from tests.conftest import make_user, wait_for
from tests.prelabel_support import nail_photo, register_model, tiny_checkpoint
from tests.test_annotation_tool_browser import open_tool, scene_geometry, wait_saved
from tests.worker import start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
VIEWPORT = {"width": 1300, "height": 850}


def test_upload_is_prelabelled_corrected_in_the_browser_measured_and_reviewed(browser, live_server):
    checkpoint = tiny_checkpoint()
    admin = make_user("boss", "admin")
    make_user("ann", "annotator")
    reviewer = make_user("rev", "reviewer")
    participant = Participant.objects.create(code="P900", consent_at=timezone.now(), consent_version=settings.NAILSET_CONSENT_VERSION)
    version = register_model("tiny-e2e", checkpoint)
    assert promote(version, admin).promoted  # no model was active: the gate lets it through (recorded)

    worker = start_worker("prelabel-e2e@localhost", queues="default,prelabel")
    try:
        photo = io.BytesIO()
        nail_photo().save(photo, "PNG")
        photo.seek(0)
        photo.name = "my-hand.png"
        phone = APIClient()
        phone.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
        sent = phone.post("/api/uploads/", {"file": photo}, format="multipart")
        assert sent.status_code == 201, sent.content
        prediction = wait_for(lambda: Prediction.objects.filter(image__participant=participant, draft_version__isnull=False).first(),
                              timeout=90, message="the automatic pre-labeling")
        wait_for(lambda: not Job.objects.filter(status__in=Job.ACTIVE).exists(), timeout=30, message="the jobs to end")
    finally:
        # Both jobs have ended: nothing is lost by a hard stop, and a warm shutdown of a worker whose pool
        # children receive the process group's SIGTERM too sometimes waits out stop_worker's 30 s timeout.
        stop_worker(worker, sig=signal.SIGKILL)
    image = prediction.image
    assert prediction.model_version == version and prediction.draft_state == "drafted" and prediction.job.queue == "prelabel"
    draft = Annotation.objects.get(image=image)
    assert draft.status == "draft" and draft.assignee is None and len(draft.geometry["nails"]) >= 1
    assert AnnotationRevision.objects.get(annotation=draft, version=prediction.draft_version).source == "model"

    url, errors = live_server.url, []
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    login(page, url, "ann", "ann-password-123")
    page.goto(f"{url}/annotate/")
    expect(page.locator("#queue-order")).to_contain_text("oldest first")
    page.click("#next-image")
    page.wait_for_url(f"{url}/annotate/{image.pk}/")
    canvas = open_tool(page, errors)
    expect(page.locator("#prelabel-banner")).to_contain_text("Pre-labelled by model tiny-e2e")
    on_screen = scene_geometry(page)
    assert [n["polygon"] for n in on_screen["nails"]] == [n["polygon"] for n in draft.geometry["nails"]]

    # Drag the first vertex of nail 1 three pixels away from the nail's centre, then submit.
    ring = on_screen["nails"][0]["polygon"]
    cx, cy = sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)
    x, y = ring[0]
    d = math.hypot(x - cx, y - cy)
    page.keyboard.press("Tab")  # selects nail 1
    moved = canvas.drag((x, y), (x + 3 * (x - cx) / d, y + 3 * (y - cy) / d))
    edited = scene_geometry(page)["nails"][0]["polygon"]
    assert edited[1:] == ring[1:] and edited[0] != ring[0] and abs(edited[0][0] - moved[0]) < 0.02
    # The model's fingers and base/tip are suggestions (ghosted): submitting needs them confirmed, Shift+G
    # accepts every nail's.
    assert all(n.get("suggested") for n in on_screen["nails"])
    page.keyboard.press("Shift+G")
    assert not any(n.get("suggested") for n in scene_geometry(page)["nails"])
    wait_saved(page)
    page.click("#submit")
    expect(page.locator("#status-chip")).to_have_text("submitted")
    context.close()

    staff = APIClient()
    staff.force_authenticate(reviewer)
    records = staff.get(f"/api/prelabel/corrections/?image={image.pk}").json()["results"]
    assert len(records) == 1
    record = records[0]
    assert record["drafted"] and record["model_version_name"] == "tiny-e2e" and record["annotator"] == "ann"
    assert (record["vertices_moved"], record["vertices_added"], record["vertices_removed"]) == (1, 0, 0)
    assert record["nails_added"] == record["nails_deleted"] == record["classes_changed"] == 0
    assert record["outcome"] == "minor" and 0.9 <= record["mean_iou"] < 1
    assert record["seconds_to_submit"] is not None and 0 < record["seconds_to_submit"] < 120
    board = staff.get("/api/prelabel/metrics/").json()
    row = next(m for m in board["models"] if m["model_version"] == "tiny-e2e")
    assert row["is_active"] and row["finished"] == 1 and row["share_minor"] == 1.0

    desk = browser.new_context(viewport=VIEWPORT)
    review = desk.new_page()
    review.on("pageerror", lambda error: errors.append(str(error)))
    login(review, url, "rev", "rev-password-123")
    review.goto(f"{url}/review/{image.pk}/")
    expect(review.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    expect(review.locator("#prediction")).to_be_visible()
    expect(review.locator("#prediction-info")).to_contain_text("Model tiny-e2e pre-labelled")
    expect(review.locator("#prediction-iou")).not_to_have_text("?")
    review_iou = float(review.locator("#prediction-iou").inner_text())
    assert 0.85 < review_iou < 1
    review.click("#prediction button")  # draws the model's draft (A) against the human labels (B)
    expect(review.locator("#diff-summary")).to_contain_text("IoU")

    review.goto(f"{url}/prelabel/?state=all")
    row = review.locator(f"#predictions tr[data-prediction='{prediction.pk}']")
    expect(row).to_contain_text(f"Image {image.pk}")
    row.locator("a").first.click()
    review.wait_for_url(f"{url}/prelabel/predictions/{prediction.pk}/")
    review.wait_for_function("() => { const i = document.querySelector('#stack .pl-prob'); return i.complete && i.naturalWidth > 0; }")
    expect(review.locator("#stack svg polygon")).to_have_count(prediction.nail_count)
    assert float(review.locator("#prediction-human-iou").inner_text()) == pytest.approx(review_iou, abs=0.002)
    expect(review.locator("#correction-outcome")).to_have_text("minor")
    expect(review.locator("#correction-summary")).to_contain_text("1 vertex/vertices moved, 0 added, 0 removed")
    desk.close()
    assert not errors, errors
