"""Pre-labeling: drafts never overwrite human edits, correction metrics, uncertainty-first queue, the
promotion gate, reviewers' decisions on drafts, the prelabel command (the model endpoint: tests/test_model_serving.py)."""
import io
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from labeling.annotations import VersionConflict, save_annotation
from labeling.intake import create_image
from labeling.models import Annotation, AnnotationRevision
from labeling.queue import claim_next, counts_for
from ml.uncertainty import edge_entropy
from prelabel import drafts, metrics
from prelabel.models import CorrectionRecord, OpenEvent, Prediction, PromotionDecision, SnapshotEvaluation
from prelabel.promotion import NotAllowed, promote
from prelabel.uncertainty import set_queue_order
from tests.prelabel_support import nail_photo, register_model, tiny_checkpoint
from training.models import ModelVersion

SQUARE = [[10, 10], [30, 10], [30, 40], [10, 40]]


def nail(polygon=SQUARE, finger=2, base=(20, 38), tip=(20, 12)):
    return {"polygon": [list(p) for p in polygon], "finger": finger, "base": list(base) if base else None,
            "tip": list(tip) if tip else None}


def geometry(*nails):
    return {"nails": list(nails), "ignore": []}


@pytest.fixture(scope="session")
def checkpoint():
    return tiny_checkpoint()


def model_version(name="m1", active=False, miou=0.5):
    """A ModelVersion whose weights are a placeholder (tests that never run it)."""
    from django.core.files.base import ContentFile

    version = ModelVersion(name=name, config={}, metrics={"miou": miou}, snapshot_content_hash="x", is_active=active)
    version.weights.save("model.pt", ContentFile(b"not used"), save=False)
    version.save()
    return version


# --- ml.uncertainty ------------------------------------------------------------------------------------------

def test_edge_entropy_ranks_blurry_edges_above_sharp_ones():
    yy, xx = np.mgrid[0:100, 0:120]
    inside = ((xx - 60) / 25.0) ** 2 + ((yy - 50) / 15.0) ** 2
    sharp = np.where(inside < 1, 0.99, 0.01).astype(np.float32)
    soft = (1 / (1 + np.exp((inside - 1) * 3))).astype(np.float32)
    faint = np.full((100, 120), 0.02, np.float32)
    faint[40:60, 50:70] = 0.4  # a blob the model half believes: no edge, but ambiguous
    empty = np.full((100, 120), 0.001, np.float32)  # confident background, no nail
    scores = {name: edge_entropy(p) for name, p in [("sharp", sharp), ("soft", soft), ("faint", faint), ("empty", empty)]}
    assert scores["soft"] > scores["sharp"] and scores["faint"] > scores["sharp"] > scores["empty"]
    assert all(0 <= v <= 1 for v in scores.values())
    assert edge_entropy(np.full((10, 10), 0.5, np.float32)) == pytest.approx(1.0, abs=1e-4)
    big = np.kron(soft, np.ones((8, 8), np.float32))  # the same map at 8x the resolution: about the same score
    assert edge_entropy(big) == pytest.approx(scores["soft"], rel=0.15)


# --- correction metrics (pure) -------------------------------------------------------------------------------

def test_vertex_edits_count_moves_inserts_and_deletes():
    same = metrics.vertex_edits(SQUARE, SQUARE)
    assert (same.moved, same.added, same.removed) == (0, 0, 0)
    moved = metrics.vertex_edits(SQUARE, [[10, 10], [30, 10], [33, 44], [10, 40]])
    assert (moved.moved, moved.added, moved.removed) == (1, 0, 0) and moved.shift_px == pytest.approx(5.0)
    inserted = metrics.vertex_edits(SQUARE, [[10, 10], [20, 8], [30, 10], [30, 40], [10, 40]])
    assert (inserted.moved, inserted.added, inserted.removed) == (0, 1, 0)
    deleted = metrics.vertex_edits(SQUARE + [[5, 25]], SQUARE)
    assert (deleted.moved, deleted.added, deleted.removed) == (0, 0, 1)
    rotated = metrics.vertex_edits(SQUARE, SQUARE[2:] + SQUARE[:2])  # same ring, other start
    assert rotated.total == 0
    shifted = metrics.vertex_edits(SQUARE, [[x + 1, y] for x, y in SQUARE])  # every vertex moved
    assert (shifted.moved, shifted.added, shifted.removed) == (4, 0, 0)


def test_compare_geometries_per_nail_and_outcome():
    draft = geometry(nail(), nail([[50, 10], [70, 10], [70, 40], [50, 40]], finger=3, base=(60, 38), tip=(60, 12)))
    assert metrics.compare_geometries(draft, draft)["summary"]["outcome"] == "unchanged"

    moved = geometry(nail([[10, 10], [30, 10], [31, 41], [10, 40]]), draft["nails"][1])
    result = metrics.compare_geometries(draft, moved)
    s = result["summary"]
    assert s["outcome"] == "minor" and s["vertices_moved"] == 1 and s["nails_added"] == s["nails_deleted"] == 0
    assert 0.9 < result["nails"][0]["iou"] < 1 and result["nails"][1]["unchanged"]

    final = geometry(
        nail(finger=7, base=(20, 36), tip=(20, 12)),            # finger changed, base moved 2 px (length 24)
        nail([[80, 10], [95, 10], [95, 30], [80, 30]], finger=4, base=(87, 28), tip=(87, 12)))  # nail 2 deleted, a new one
    result = metrics.compare_geometries(draft, final)
    s, first = result["summary"], result["nails"][0]
    assert s["outcome"] == "major" and s["nails_added"] == 1 and s["nails_deleted"] == 1 and s["classes_changed"] == 1
    assert first["class_changed"] and first["base_px"] == pytest.approx(2.0) and first["tip_px"] == 0
    assert first["nail_length_px"] == pytest.approx(24.0) and first["landmark_share"] == pytest.approx(2 / 24, abs=1e-3)
    assert {n["status"] for n in result["nails"]} == {"matched", "deleted", "added"}

    far = geometry(nail(base=(20, 30), tip=(20, 12)))            # base moved by 8 px: a third of the nail
    assert metrics.compare_geometries(geometry(nail()), far)["summary"]["outcome"] == "major"
    cleared = geometry(nail(base=None, tip=None))
    s = metrics.compare_geometries(geometry(nail()), cleared)["summary"]
    assert s["landmarks_removed"] == 2 and s["outcome"] == "major"


# --- drafts: never overwrite a human edit ----------------------------------------------------------------------

@pytest.mark.django_db
def test_drafts_never_overwrite_human_edits(make_image, users):
    image = make_image(64, 48)
    state, version = drafts.write_draft(image, geometry(nail()), "m1")
    assert (state, version) == ("drafted", 1)
    revision = AnnotationRevision.objects.get(annotation__image=image, version=1)
    assert revision.source == "model" and revision.model_version == "m1" and revision.author is None
    assert Annotation.objects.get(image=image).status == "draft"
    assert drafts.write_draft(image, geometry(nail()), "m1") == ("kept", 1)       # the same prediction again
    newer = geometry(nail([[12, 10], [30, 10], [30, 40], [12, 40]]))
    assert drafts.write_draft(image, newer, "m2") == ("drafted", 2)               # a newer model's draft replaces it

    # An annotator who opened version 1 saves after the second draft: a conflict, nothing overwritten.
    with pytest.raises(VersionConflict):
        save_annotation(image, users["annotator"], geometry=geometry(nail(finger=3)), version=1)
    human = geometry(nail(finger=4))
    save_annotation(image, users["annotator"], geometry=human, version=2)
    for model in ("m1", "m3"):
        assert drafts.write_draft(image, geometry(nail(finger=9)), model) == ("skipped_human", None)
    annotation = Annotation.objects.get(image=image)
    assert annotation.version == 3 and annotation.geometry["nails"][0]["finger"] == 4
    assert [r.source for r in annotation.revisions.order_by("version")] == ["model", "model", "human"]

    imported = make_image(64, 48)  # labels imported from another tool count as human
    from labeling.annotations import import_annotation

    import_annotation(imported, geometry(nail()), status="accepted", note="coco")
    assert drafts.write_draft(imported, geometry(nail(finger=5)), "m1") == ("skipped_human", None)


@pytest.mark.django_db
def test_nails_to_geometry_keeps_landmarks_only_with_a_direction():
    class FakeNail:
        def __init__(self, source, polygon=SQUARE):
            self.finger, self.direction_source, self.polygon = 2, source, polygon
            self.extra = {"field_coherence": 0.9} if source == "field" else {}

        def to_dict(self):
            return {"polygon": self.polygon, "base": [20, 39], "tip": [20, 11], "confidence": 0.8, "class_confidence": 0.7,
                    "area": 600}

    geo, kept, dropped = drafts.nails_to_geometry([FakeNail("field"), FakeNail("shape", [[40, 10], [60, 10], [60, 40]]),
                                                   FakeNail("field", [[0, 0], [1, 0], [2, 0]])], 64, 48)
    assert len(geo["nails"]) == 2 and len(dropped) == 1 and "reason" in dropped[0]
    assert geo["nails"][0]["base"] == [20, 39] and geo["nails"][1]["base"] is None
    assert kept[0]["confidence"] == 0.8
    assert geo["nails"][0]["suggested"] == {"finger": 0.7, "landmarks": 0.9} and geo["nails"][1]["suggested"] == {"finger": 0.7}


# --- correction records ----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_correction_record_for_a_finished_draft_and_time_to_submit(make_image, users, client_for):
    annotator = users["annotator"]
    image = make_image(64, 48)
    version = model_version("m1")
    draft_geometry = geometry(nail(), nail([[40, 10], [60, 10], [60, 40], [40, 40]], finger=3, base=(50, 38), tip=(50, 12)))
    state, draft_version = drafts.write_draft(image, draft_geometry, version.name)
    Prediction.objects.create(image=image, model_version=version, nails=[], geometry=draft_geometry, draft_state=state,
                              draft_version=draft_version, overlay_png=b"")
    opened = timezone.now()
    AnnotationRevision.objects.filter(annotation__image=image).update(created_at=opened - timedelta(minutes=5))
    OpenEvent.objects.create(image=image, user=annotator, annotation_version=1, opened_at=opened - timedelta(minutes=10))  # before the draft
    OpenEvent.objects.create(image=image, user=annotator, annotation_version=1, opened_at=opened - timedelta(seconds=30))
    final = geometry(nail([[10, 10], [30, 10], [32, 42], [10, 40]]), draft_geometry["nails"][1])
    save_annotation(image, annotator, geometry=final, version=1)                         # autosave
    save_annotation(image, annotator, geometry=final, version=2, status="submitted")     # submit
    other = make_image(64, 48)                                                           # no draft at all
    OpenEvent.objects.create(image=other, user=annotator, annotation_version=0, opened_at=opened - timedelta(seconds=90))
    save_annotation(other, annotator, geometry=final, version=0, status="submitted")

    assert client_for("annotator").get("/api/prelabel/corrections/").status_code == 403
    listing = client_for("reviewer").get(f"/api/prelabel/corrections/?image={image.pk}").json()["results"]
    assert len(listing) == 1
    record = CorrectionRecord.objects.get(image=image)
    assert record.drafted and record.draft_version == 1 and record.final_version == 3 and record.outcome == "minor"
    assert (record.vertices_moved, record.vertices_added, record.vertices_removed) == (1, 0, 0)
    assert record.nails_added == record.nails_deleted == record.classes_changed == 0
    assert 25 <= record.seconds_to_submit <= 60 and record.model_version == version and record.annotator == annotator
    assert CorrectionRecord.objects.get(image=other).outcome == "no_draft"
    assert metrics.collect_corrections() == 0  # nothing twice
    board = client_for("reviewer").get("/api/prelabel/metrics/").json()
    row = next(m for m in board["models"] if m["model_version"] == "m1")
    assert row["finished"] == 1 and row["share_minor"] == 1.0 and row["median_seconds_with_draft"] is not None
    assert board["without_draft"]["images"] == 1 and board["without_draft"]["median_seconds"] >= 85
    pages = Client()
    pages.force_login(users["reviewer"])
    page = pages.get("/prelabel/metrics/")
    assert page.status_code == 200 and b'data-model="m1"' in page.content and b"100 %" in page.content


# --- reviewers' decisions on drafts ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_empty_model_draft_offers_no_accept(make_image, users, client_for):
    version = model_version("m1")
    drafted = []
    for nails in ((), (nail(),)):
        image = make_image(64, 48)
        g = geometry(*nails)
        state, v = drafts.write_draft(image, g, version.name)
        drafted.append(Prediction.objects.create(image=image, model_version=version, geometry=g, draft_state=state, draft_version=v,
                                                 overlay_png=b"", confidence=None if not nails else 0.9, nail_count=len(nails)))
    empty, full = drafted
    reviewer = client_for("reviewer")
    refused = reviewer.post(f"/api/prelabel/predictions/{empty.pk}/accept/")
    assert refused.status_code == 409 and "no nail" in refused.json()["detail"]
    assert Annotation.objects.get(image=empty.image).status != "submitted"
    pages = Client()
    pages.force_login(users["reviewer"])
    page = pages.get(f"/prelabel/predictions/{empty.pk}/")
    assert page.status_code == 200 and b'value="accept"' not in page.content and b"nothing to accept" in page.content
    assert b'value="accept"' in pages.get(f"/prelabel/predictions/{full.pk}/").content
    assert reviewer.post(f"/api/prelabel/predictions/{full.pk}/accept/").status_code == 200

@pytest.mark.django_db
def test_review_decisions_on_drafts(make_image, users, client_for):
    version = model_version("m1")
    made = []
    for complete in (True, False, True):
        image = make_image(64, 48)
        g = geometry(nail() if complete else nail(base=None, tip=None))
        state, v = drafts.write_draft(image, g, version.name)
        made.append(Prediction.objects.create(image=image, model_version=version, geometry=g, draft_state=state,
                                              draft_version=v, overlay_png=b"", confidence=0.5 + 0.1 * len(made)))
    complete_one, incomplete, blurry = made
    reviewer, annotator = client_for("reviewer"), client_for("annotator")
    assert annotator.post(f"/api/prelabel/predictions/{complete_one.pk}/accept/").status_code == 403
    ok = reviewer.post(f"/api/prelabel/predictions/{complete_one.pk}/accept/")
    assert ok.status_code == 200 and ok.json()["review_state"] == "accepted"
    assert Annotation.objects.get(image=complete_one.image).status == "submitted"
    refused = reviewer.post(f"/api/prelabel/predictions/{incomplete.pk}/accept/")
    assert refused.status_code == 409 and "incomplete" in refused.json()["detail"]
    sent = reviewer.post(f"/api/prelabel/predictions/{incomplete.pk}/send/", {"assignee": "ann"}, format="json")
    assert sent.status_code == 200 and Annotation.objects.get(image=incomplete.image).assignee == users["annotator"]
    rejected = reviewer.post(f"/api/prelabel/predictions/{blurry.pk}/reject/", {"reason": "blurry"}, format="json")
    assert rejected.status_code == 200
    annotation = Annotation.objects.get(image=blurry.image)
    assert annotation.status == "rejected" and annotation.assignee is None and "blurry" in annotation.review_comment
    assert drafts.write_draft(blurry.image, geometry(nail()), "m2")[0] == "skipped_human"  # stays rejected
    # Sorting by confidence, least confident first; annotators only see what they may open.
    order = [p["id"] for p in reviewer.get("/api/prelabel/predictions/?ordering=confidence").json()["results"]]
    assert order == [p.pk for p in made]
    assert reviewer.get("/api/prelabel/predictions/?ordering=-confidence").json()["results"][0]["id"] == blurry.pk
    pages = Client()
    pages.force_login(users["reviewer"])
    page = pages.get("/prelabel/?state=all&sort=confidence")
    assert page.status_code == 200 and b"least confident first" in page.content
    pages.force_login(users["annotator"])
    assert pages.get("/prelabel/").status_code == 403


# --- uncertainty-first queue -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_uncertainty_first_queue_and_the_order_is_shown(make_image, users, client_for):
    version = model_version("m1", active=True)
    images = [make_image(64, 48) for _ in range(4)]
    for image, score in zip(images[:3], (0.2, 0.9, 0.5)):
        Prediction.objects.create(image=image, model_version=version, uncertainty=score, draft_state="drafted", overlay_png=b"")
    annotator = users["annotator"]
    assert counts_for(annotator).order.name == "oldest"
    assert client_for("annotator").get("/api/prelabel/queue-order/").json()["order"] == "oldest"
    admin = client_for("admin")
    assert client_for("annotator").put("/api/prelabel/queue-order/", {"order": "uncertainty"}, format="json").status_code == 403
    assert admin.put("/api/prelabel/queue-order/", {"order": "sideways"}, format="json").status_code == 400
    assert admin.put("/api/prelabel/queue-order/", {"order": "uncertainty"}, format="json").json()["order"] == "uncertainty"
    claimed = [claim_next(annotator) for _ in range(1)]
    # The user's own claimed image comes back first until it is done; take the queue's order via other users.
    from tests.conftest import make_user

    others = [make_user(f"a{k}", "annotator") for k in range(3)]
    claimed += [claim_next(user) for user in others]
    assert [image.pk for image in claimed] == [images[1].pk, images[2].pk, images[0].pk, images[3].pk]
    shown = client_for("annotator").get("/api/prelabel/queue-order/").json()
    assert shown["order"] == "uncertainty" and "most uncertain first" in shown["label"]
    pages = Client()
    pages.force_login(annotator)
    page = pages.get("/annotate/")
    assert b'data-order="uncertainty"' in page.content and b"most uncertain first" in page.content
    set_queue_order("oldest")
    assert counts_for(annotator).order.name == "oldest"
    pages.force_login(users["admin"])
    assert pages.post("/prelabel/queue-order", {"order": "uncertainty"}).status_code == 302
    assert b'data-order="uncertainty"' in pages.get("/prelabel/metrics/").content


# --- the promotion gate -------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_promotion_gate_refuses_a_worse_model_and_records_overrides(users):
    from curation.models import Snapshot

    snapshot = Snapshot.objects.create(name="s1", status="ready", content_hash="h")
    first, better, worse = model_version("first"), model_version("better"), model_version("worse")
    for version, miou in ((first, 0.70), (better, 0.75), (worse, 0.60)):
        SnapshotEvaluation.objects.create(model_version=version, snapshot=snapshot, size=64, miou=miou)
    admin = users["admin"]
    with pytest.raises(NotAllowed):
        promote(first, users["reviewer"])
    decision = promote(first, admin)
    assert decision.promoted and decision.previous_active is None and ModelVersion.objects.get(is_active=True) == first

    refused = promote(worse, admin)
    assert not refused.promoted and not refused.override and refused.candidate_miou == 0.60 and refused.active_miou == 0.70
    assert "below" in refused.reason and ModelVersion.objects.get(is_active=True) == first
    blank = promote(worse, admin, override_reason="   ")  # an override needs a reason: a blank one is none
    assert not blank.promoted and not blank.override

    granted = promote(better, admin)
    assert granted.promoted and granted.previous_active == first and granted.snapshot_name == "s1"
    assert list(ModelVersion.objects.filter(is_active=True)) == [better]

    forced = promote(worse, admin, override_reason="the new labels of the val split favour it; checked by hand")
    assert forced.promoted and forced.override and forced.decided_by == admin and "checked by hand" in forced.reason
    assert list(ModelVersion.objects.filter(is_active=True)) == [worse]
    assert PromotionDecision.objects.count() == 5
    with pytest.raises(IntegrityError), transaction.atomic():
        PromotionDecision.objects.create(model_version=better, promoted=True, override=True, reason="")
    with pytest.raises(IntegrityError), transaction.atomic():  # the database allows one active model
        ModelVersion.objects.filter(pk=first.pk).update(is_active=True)


@pytest.mark.django_db
def test_promotion_without_a_snapshot_needs_an_override(users, client_for):
    current, candidate = model_version("current", active=True), model_version("candidate")
    decision = promote(candidate, users["admin"])
    assert not decision.promoted and "no ready snapshot" in decision.reason
    assert client_for("reviewer").post("/api/prelabel/promotions/", {"model": "candidate"}, format="json").status_code == 403
    assert client_for("reviewer").get("/api/prelabel/promotions/").json()["results"][0]["promoted"] is False
    forced = promote(candidate, users["admin"], override_reason="first snapshot is still being built")
    assert forced.promoted and forced.override and forced.previous_active == current


# --- the prelabel command (a real tiny model; the model endpoint: tests/test_model_serving.py) --------------------

@pytest.mark.django_db
def test_prelabel_command_drafts_open_images_and_leaves_human_labels(checkpoint, participant, users, client_for):
    version = register_model("tiny-1", checkpoint)
    photo, _ = create_image(participant, nail_photo(), "PNG")
    labelled, _ = create_image(participant, nail_photo(nails=((40, 30, 16, 10, 1.0),)), "PNG")
    save_annotation(labelled, users["annotator"], geometry=geometry(nail()), version=0)
    out = StringIO()
    call_command("prelabel", "tiny-1", "--participant", participant.code, stdout=out)
    assert "1 draft(s) written" in out.getvalue()
    prediction = Prediction.objects.get(image=photo)
    assert prediction.draft_state == "drafted" and prediction.nail_count >= 1 and 0.5 < prediction.confidence <= 1
    revision = AnnotationRevision.objects.get(annotation__image=photo, version=prediction.draft_version)
    assert revision.source == "model" and revision.model_version == version.name
    assert all(n["polygon"] and "confidence" in n for n in prediction.nails)
    assert Annotation.objects.get(image=labelled).version == 1  # the human's labels were not touched
    overlay = client_for("reviewer").get(f"/api/prelabel/predictions/{prediction.pk}/overlay/", HTTP_ACCEPT="image/png")
    assert overlay.status_code == 200 and overlay["Content-Type"] == "image/png"
    from PIL import Image as PILImage

    assert PILImage.open(io.BytesIO(overlay.content)).mode == "RGBA"
    out = StringIO()
    call_command("prelabel", "tiny-1", "--images", f"{labelled.pk}", stdout=out)
    assert Prediction.objects.get(image=labelled).draft_state == "skipped_human" and "1 left alone" in out.getvalue()
