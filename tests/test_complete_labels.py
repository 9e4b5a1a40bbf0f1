"""Label suggestions in the product (issue #16): ``GET /api/images/{id}/label-suggestions/`` and the bulk
``complete_labels`` command / job (labeling/suggestions.py). The photos are synthetic hands drawn by
tests/test_label_suggestions.py, with their true fingers and landmarks."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from dataset.geometry import normalize_geometry, validate_geometry
from jobs.models import Job
from labeling import queue
from labeling.annotations import import_annotation
from labeling.intake import create_image
from labeling.models import Annotation, AnnotationRevision
from tests.test_label_suggestions import POLISH, hand_parts, render


def hand_image(participant, digits=(1, 2, 3, 4, 5)):
    """A photo of a right hand (fingers up) and its nails' true labels."""
    pixels, nails = render((360, 360), [hand_parts((180, 200), 20, 0, False, digits=digits)], tones=POLISH)
    image, _ = create_image(participant, PILImage.fromarray(pixels), "PNG")
    truth = [{"polygon": [[round(float(x), 2), round(float(y), 2)] for x, y in n["polygon"]], "finger": n["finger"],
              "base": [round(float(v), 2) for v in n["base"]], "tip": [round(float(v), 2) for v in n["tip"]]}
             for n in nails]
    return image, truth


@pytest.fixture
def hand(participant):
    return hand_image(participant)


def outlines(truth):
    return {"nails": [{"polygon": n["polygon"]} for n in truth]}


def run(*args) -> str:
    out = StringIO()
    call_command("complete_labels", *args, stdout=out)
    return out.getvalue()


def test_command_marks_what_it_wrote_and_never_overwrites_a_human(hand):
    image, truth = hand
    labels = outlines(truth)
    labels["nails"][0].update(finger=truth[1]["finger"])                   # a human's (wrong) finger: stays
    labels["nails"][1].update(base=truth[1]["tip"], tip=truth[1]["base"])  # a human's (reversed) landmarks: stay
    import_annotation(image, labels, status="accepted", note="import")
    text = run("--image", str(image.pk))
    annotation = Annotation.objects.get(image=image)
    nails = annotation.geometry["nails"]
    assert annotation.version == 2 and annotation.status == "accepted"
    assert nails[0]["finger"] == truth[1]["finger"] and "finger" not in nails[0].get("suggested", {})
    assert nails[0]["base"] is not None and set(nails[0]["suggested"]) == {"landmarks"}
    assert (nails[1]["base"], nails[1]["tip"]) == (truth[1]["tip"], truth[1]["base"])
    assert set(nails[1]["suggested"]) == {"finger"}
    for nail in nails[2:]:
        assert set(nail["suggested"]) == {"finger", "landmarks"}
        assert all(0 <= c <= 1 for c in nail["suggested"].values())
    assert validate_geometry(annotation.geometry, image.width, image.height).ok
    assert normalize_geometry(annotation.geometry) == annotation.geometry
    revision = annotation.revisions.get(version=2)
    assert revision.source == AnnotationRevision.Source.SUGGESTION and revision.author is None
    assert "suggested finger on 4 nail(s), landmarks on 4 nail(s)" in revision.note and "ml.label_suggestions" in revision.note
    assert "images: 1, changed: 1" in text and "finger confirmed 1" in text and "landmarks confirmed 1" in text
    # suggestions are not labels: the image stays in the incomplete queue, training reads them as missing
    assert queue.is_incomplete(annotation.status, annotation.geometry)
    # a second run changes nothing the human set, and leaves unchanged suggestions alone
    run("--image", str(image.pk))
    again = Annotation.objects.get(image=image)
    assert again.geometry["nails"][0]["finger"] == truth[1]["finger"] and again.geometry["nails"][1]["tip"] == truth[1]["base"]
    assert again.version == 2


def test_accept_above_writes_confident_fields_confirmed(participant):
    image, truth = hand_image(participant, digits=(2, 3, 4))   # no thumb: the fingers are less sure than the directions
    import_annotation(image, outlines(truth), status="accepted", note="import")
    run("--participant", image.participant.code)
    suggested = Annotation.objects.get(image=image).geometry["nails"]
    confidences = sorted(c for n in suggested for c in n["suggested"].values())
    threshold = confidences[len(confidences) // 2]            # about half are at or above it
    text = run("--all", "--accept-above", str(threshold))
    annotation = Annotation.objects.get(image=image)
    accepted = suggested_after = 0
    for before, nail in zip(suggested, annotation.geometry["nails"]):
        for field, confidence in before["suggested"].items():
            if confidence >= threshold:
                assert field not in nail.get("suggested", {}), (field, confidence)
                accepted += 1
            else:
                assert nail["suggested"][field] == confidence
                suggested_after += 1
    assert accepted and suggested_after
    assert annotation.status == "submitted"                  # machine-confirmed fields go back to a reviewer
    assert f"with confidence >= {threshold} (--accept-above)" in annotation.revisions.get(version=annotation.version).note
    assert f"accepted (nail fields): " in text and "changed: 1" in text
    # the accepted landmarks point the true way on this clear photo
    for nail, true in zip(annotation.geometry["nails"], truth):
        if "landmarks" not in nail.get("suggested", {}):
            assert (nail["tip"][1] < nail["base"][1]) == (true["tip"][1] < true["base"][1])


def test_command_arguments_and_enqueue(hand):
    image, truth = hand
    import_annotation(image, outlines(truth), status="accepted", note="import")
    with pytest.raises(CommandError):
        call_command("complete_labels", "--all", "--image", str(image.pk), stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="there is no image 999999"):
        run("--image", "999999")
    with pytest.raises(CommandError, match="existing participant"):
        run("--participant", "ghost")
    out = run("--all", "--enqueue")
    job = Job.objects.get(kind="complete_labels", status="queued")
    assert f"queued job {job.pk}" in out and job.arguments == {"all": True}
    assert Annotation.objects.get(image=image).version == 1   # queued, not run


def test_endpoint_answers_per_nail_with_the_readers_permissions(hand, client_for, users):
    image, truth = hand
    labels = outlines(truth)
    labels["nails"][2].update(id="n3", finger=truth[2]["finger"])
    import_annotation(image, labels, status="accepted", note="import")
    url = f"/api/images/{image.pk}/label-suggestions/"
    body = client_for("reviewer").get(url).json()
    assert body["image"] == image.pk and body["version"] == 1 and len(body["nails"]) == 5
    third = body["nails"][2]
    assert third["index"] == 2 and third["id"] == "n3" and third["missing"] == ["landmarks"]
    assert third["suggestion"]["finger"] == truth[2]["finger"] and third["suggestion"]["confidence"] == 1.0
    assert body["nails"][0]["missing"] == ["finger", "landmarks"]
    assert set(body["nails"][0]["suggestion"]) >= {"finger", "hand", "digit", "base", "tip", "confidence",
                                                   "direction_confidence", "reasons"}
    assert client_for("annotator").get(url).status_code == 200                 # the open queue: unassigned
    Annotation.objects.filter(image=image).update(assignee=users["annotator2"])
    assert client_for("annotator").get(url).status_code == 404                 # someone else's image
    assert client_for(None).get(url).status_code in (401, 403)
    assert client_for("admin").get("/api/images/999999/label-suggestions/").status_code == 404
    assert Annotation.objects.get(image=image).version == 1                    # nothing saved


def test_posting_the_pages_nails_suggests_for_them_not_the_saved_ones(hand, client_for, users):
    """``POST {"nails": [...]}``: the suggestions of the page's nails (saved or not), their confirmed fields as
    constraints; a nail still being drawn is left out; anything that is not a nail is a 400 naming it."""
    image, truth = hand
    import_annotation(image, outlines(truth[:2]), status="accepted", note="import")
    url = f"/api/images/{image.pk}/label-suggestions/"
    client = client_for("annotator")
    assert len(client.get(url).json()["nails"]) == 2                           # the saved labels
    page = [{"id": f"p{k}", "polygon": n["polygon"], "finger": None, "base": None, "tip": None} for k, n in enumerate(truth)]
    page[2]["finger"] = truth[2]["finger"]
    bow_tie = {"id": "drawing", "polygon": [[10, 10], [60, 60], [60, 10], [10, 60]], "finger": None, "base": None, "tip": None}
    body = client.post(url, {"nails": page + [bow_tie]}, format="json").json()
    assert [n["id"] for n in body["nails"]] == ["p0", "p1", "p2", "p3", "p4"] and body["version"] == 1
    assert body["nails"][2]["missing"] == ["landmarks"] and body["nails"][2]["suggestion"]["confidence"] == 1.0
    assert all(n["suggestion"]["finger"] == t["finger"] for n, t in zip(body["nails"], truth))  # the whole hand read
    for nails, problem in (("all", "'nails' must be a list"), ([7], "nail 1"),
                           ([{"polygon": [[1, 1], [9, 1], [9, 9]], "finger": 12}], "nail 1")):
        bad = client.post(url, {"nails": nails}, format="json")
        assert bad.status_code == 400 and problem in bad.json()["nails"][0], bad.json()
    assert client.post(url, {"nails": page}, format="json").status_code == 200  # the good one next to them
    Annotation.objects.filter(image=image).update(assignee=users["annotator2"])
    assert client.post(url, {"nails": page}, format="json").status_code == 404  # someone else's image
    assert Annotation.objects.get(image=image).version == 1                    # nothing saved


def test_dataset_stats_tell_suggested_from_confirmed(hand, client, users):
    from curation.stats import dataset_stats
    image, truth = hand
    labels = outlines(truth)
    labels["nails"][0].update(finger=truth[0]["finger"], base=truth[0]["base"], tip=truth[0]["tip"])   # a human's
    import_annotation(image, labels, status="accepted", note="import")
    run("--all")
    completeness = dataset_stats()["completeness"]
    assert completeness == {"complete": 1, "missing_finger": 4, "missing_landmarks": 4,
                            "suggested_finger": 4, "suggested_landmarks": 4}
    client.force_login(users["admin"])
    html = client.get("/dataset/").content.decode()
    assert 'id="suggested-counts" data-finger="4" data-landmarks="4"' in html


def test_expected_calibration_error():
    from bench.complete_labels import expected_calibration_error

    assert expected_calibration_error([(0.95, True)] * 19 + [(0.95, False)]) < 1e-9  # says 95 %, is 95 %
    assert abs(expected_calibration_error([(0.9, True), (0.9, False)]) - 0.4) < 1e-9  # says 90 %, is 50 %
    assert abs(expected_calibration_error([(1.0, False), (0.05, False)]) - 0.525) < 1e-9  # 1.0 falls in the top bin
    assert expected_calibration_error([]) == 0.0


def test_the_active_models_votes_are_weighed_and_its_outputs_kept_per_image(hand, client_for, monkeypatch):
    """A model whose class and direction heads were trained votes on every nail (ml.nail_votes via
    prelabel/model_votes.py); the network runs once per image and version (prelabel/active_prediction.py),
    later calls (after each autosave, polygons changed) read the kept outputs; no active model, or one whose
    heads never trained: the geometry and the photo alone."""
    from labeling import extensions
    from prelabel import active_prediction, model_votes
    from tests.prelabel_support import register_model, tiny_checkpoint
    from training import serving

    assert model_votes.active_nail_votes in extensions.vote_providers()
    image, truth = hand
    import_annotation(image, outlines(truth), status="accepted", note="import")
    url = f"/api/images/{image.pk}/label-suggestions/"
    client = client_for("reviewer")
    alone = client.get(url).json()["nails"]
    assert not any("model votes" in n["suggestion"]["reasons"] for n in alone)

    version = register_model("votes-tiny", tiny_checkpoint(), active=True)
    active_prediction.outputs.clear()
    serving.predictors.clear()
    voted = client.get(url).json()["nails"]
    assert all("model votes" in n["suggestion"]["reasons"] for n in voted)
    runs = []
    real = active_prediction.shrunk_prediction
    monkeypatch.setattr(active_prediction, "shrunk_prediction", lambda *a: runs.append(a) or real(*a))
    moved = outlines(truth)
    moved["nails"][0]["polygon"] = [[x + 1, y] for x, y in moved["nails"][0]["polygon"]]
    import_annotation(image, moved, status="accepted", note="moved")
    again = client.get(url).json()["nails"]
    assert all("model votes" in n["suggestion"]["reasons"] for n in again)
    assert runs == []  # the kept outputs, read with the moved polygon
    assert active_prediction.outputs.keys() == [(image.pk, image.file.name, version.pk, version.weights.name)]
    active_prediction.outputs.clear()
    client.get(url)
    assert len(runs) == 1

    # A model whose class and direction heads never trained (their losses 0 in every epoch): no votes.
    class Untrained:
        heads = {"classes": False, "field": False}

    monkeypatch.setattr(model_votes, "predictor_for", lambda v: Untrained())
    active_prediction.outputs.clear()
    runs.clear()
    assert not any("model votes" in n["suggestion"]["reasons"] for n in client.get(url).json()["nails"])
    assert runs == []  # nor does it run the network for them
    active_prediction.outputs.clear()


def test_a_failing_vote_provider_leaves_the_suggestions_working(hand, client_for, monkeypatch, caplog):
    """A model that cannot run (weights missing or broken) must not break the page's suggestions: the provider's
    failure is logged and the suggestions come from the geometry and the photo."""
    from labeling import extensions

    image, truth = hand
    import_annotation(image, outlines(truth), status="accepted", note="import")

    def broken(image, rgb, polygons):
        raise OSError("weights file missing")

    monkeypatch.setattr(extensions, "_vote_providers", [broken])
    answer = client_for("reviewer").get(f"/api/images/{image.pk}/label-suggestions/")
    assert answer.status_code == 200
    assert not any("model votes" in n["suggestion"]["reasons"] for n in answer.json()["nails"])
    assert "vote provider" in caplog.text and "weights file missing" in caplog.text


def test_a_large_photo_is_suggested_on_its_small_copy_with_answers_in_the_photos_pixels(participant, client_for,
                                                                                        monkeypatch):
    """The page asks for suggestions after every autosave: a photo longer than photos.SUGGESTION_SIDE is read
    at that size (a 12 MP photo in Lab costs ~0.6 s a call), the polygons and base/tip scaled to it and back."""
    from labeling import photos, suggestions
    from tests.test_label_suggestions import angle_error

    pixels, nails = render((360, 360), [hand_parts((180, 200), 20, 0, False)])
    big = PILImage.fromarray(pixels).resize((1440, 1440), PILImage.BILINEAR)
    image, _ = create_image(participant, big, "PNG")
    truth = [{"polygon": [[round(float(x) * 4, 2), round(float(y) * 4, 2)] for x, y in n["polygon"]],
              "finger": n["finger"], "base": n["base"] * 4, "tip": n["tip"] * 4} for n in nails]
    import_annotation(image, outlines(truth), status="accepted", note="import")
    seen = []
    real = suggestions.suggest_labels
    monkeypatch.setattr(suggestions, "suggest_labels", lambda polygons, photo, **kw: seen.append(photo.shape) or
                        real(polygons, photo, **kw))
    body = client_for("reviewer").get(f"/api/images/{image.pk}/label-suggestions/").json()
    assert seen == [(photos.SUGGESTION_SIDE, photos.SUGGESTION_SIDE, 3)]
    for entry, answer in zip(body["nails"], truth):
        got = entry["suggestion"]
        assert got["finger"] == answer["finger"]

        class Got:
            base, tip = got["base"], got["tip"]
        assert angle_error(Got, {"base": answer["base"], "tip": answer["tip"]}) < 30
        assert all(0 <= v <= 1440 for v in got["base"] + got["tip"]) and max(got["tip"]) > 360  # photo pixels
