"""``POST /api/images/{id}/click-nail/`` (issue #18, labeling/click_nail.py): the proposal for a click, allowed
to whoever may edit the image's labels, 400 for each kind of bad points, the photo decoded once, the model's
probability used when a foreground provider (pre-labeling's: the active model) has one."""
import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from labeling import click_nail, extensions, photos
from labeling.annotations import save_annotation
from labeling.intake import create_image
from labeling.models import Annotation
from prelabel import click_foreground
from prelabel.click_foreground import active_foreground
from tests.test_click_segmentation import iou, synthetic_nail

CLICK = [320, 245, 1]


@pytest.fixture
def nail_image(participant):
    """A 640x480 photo of one synthetic nail, and the nail's mask."""
    photo, truth = synthetic_nail(seed=11)
    image, _ = create_image(participant, PILImage.fromarray(photo), "PNG")
    photos.clear_photo_cache()
    return image, truth


def url(image):
    return f"/api/images/{image.pk}/click-nail/"


def test_a_click_proposes_the_nail_with_its_suggested_finger_and_landmarks(client_for, nail_image):
    image, truth = nail_image
    client = client_for("annotator")
    response = client.post(url(image), {"points": [CLICK]}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["source"] == "image" and data["model"] is None
    nail = data["nail"]
    assert iou(nail["polygon"], truth) >= 0.85
    assert 0.5 < data["confidence"] <= 1
    assert nail["base"] and nail["tip"] and nail["base"] != nail["tip"]
    assert 0 <= nail["suggested"]["landmarks"] <= 1
    assert set(nail["suggested"]) <= {"finger", "landmarks"}
    assert ("finger" in nail["suggested"]) == (nail["finger"] is not None)
    # Decoded once: the next click reuses the photo; nothing was saved.
    assert photos.cached_photos() == [(image.pk, image.file.name)]
    again = client.post(url(image), {"points": [CLICK, [480, 400, 0]]}, format="json")
    assert again.status_code == 200 and again.json()["nail"]
    assert photos.cached_photos() == [(image.pk, image.file.name)]
    assert Annotation.objects.get(image=image).version == 0


def test_the_image_nails_set_the_size_and_the_others_labels_constrain_the_suggestion(client_for, users, nail_image):
    image, truth = nail_image
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    far = (contours[0].reshape(-1, 2) + [-250, 0]).tolist()   # a copy of the nail further left: a known left thumb
    save_annotation(image, users["annotator"], version=0,
                    geometry={"nails": [{"polygon": far, "finger": 1, "base": None, "tip": None}], "ignore": []})
    data = client_for("annotator").post(url(image), {"points": [CLICK]}, format="json").json()
    assert iou(data["nail"]["polygon"], truth) >= 0.85
    assert data["nail"]["finger"] != 1   # the thumb is taken by the other nail


def test_permissions_are_those_of_editing_the_labels(client_for, users, nail_image, make_image):
    image, _ = nail_image
    body = {"points": [CLICK]}
    assert client_for(None).post(url(image), body, format="json").status_code in (401, 403)
    assert client_for("nobody").post(url(image), body, format="json").status_code == 403
    reviewer = client_for("reviewer").post(url(image), body, format="json")
    assert reviewer.status_code == 403 and "annotators and admins" in reviewer.json()["detail"]
    assert client_for("admin").post(url(image), body, format="json").status_code == 200
    # Assigned to another annotator: not visible to this one (404, as the save answers).
    Annotation.objects.filter(image=image).update(assignee=users["annotator2"])
    assert client_for("annotator").post(url(image), body, format="json").status_code == 404
    assert client_for("annotator2").post(url(image), body, format="json").status_code == 200
    # Accepted and complete: only an admin may change it.
    done = {"nails": [{"polygon": [[10, 10], [40, 10], [40, 40], [10, 40]], "finger": 2, "base": [25, 40], "tip": [25, 10]}],
            "ignore": []}
    Annotation.objects.filter(image=image).update(assignee=users["annotator"], status=Annotation.Status.ACCEPTED, geometry=done)
    refused = client_for("annotator").post(url(image), body, format="json")
    assert refused.status_code == 403 and "accepted" in refused.json()["detail"]
    assert client_for("admin").post(url(image), body, format="json").status_code == 200
    assert client_for("admin").post("/api/images/999999/click-nail/", body, format="json").status_code == 404


@pytest.mark.parametrize("points, problem", [
    (None, "must be a list"),
    ("320,245", "must be a list"),
    ([], "empty"),
    ([[320, 245]], "must be [x, y, label]"),
    ([[320, 245, 1, 0]], "must be [x, y, label]"),
    ([{"x": 320, "y": 245}], "must be [x, y, label]"),
    ([["320", 245, 1]], "must be numbers"),
    ([[True, 245, 1]], "must be numbers"),
    ([[320, 245, 2]], "label must be 1"),
    ([[320, 245, True]], "label must be 1"),
    ([[641, 245, 1]], "outside the 640x480 image"),
    ([[320, -1, 1]], "outside the 640x480 image"),
    ([[320, 245, 0]], "no positive point"),
    ([[320, 245, 1]] * (click_nail.MAX_POINTS + 1), "too many points"),
])
def test_bad_points_are_answered_400_naming_the_problem(client_for, nail_image, points, problem):
    image, _ = nail_image
    client = client_for("annotator")
    response = client.post(url(image), {"points": points}, format="json")
    assert response.status_code == 400
    assert problem in response.json()["points"][0]
    assert client.post(url(image), {"points": [CLICK]}, format="json").status_code == 200  # the good one next to it


def test_a_registered_foreground_provider_makes_the_source_model(client_for, nail_image, monkeypatch):
    image, truth = nail_image
    prob = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 2.0)
    asked = []

    def provider(img, rgb):
        asked.append((img.pk, rgb.shape))
        return prob, "test-model"

    monkeypatch.setattr(extensions, "_foreground_providers", [])
    extensions.register_foreground_provider(lambda img, rgb: None)   # one without a model is skipped
    extensions.register_foreground_provider(provider)
    data = client_for("annotator").post(url(image), {"points": [CLICK]}, format="json").json()
    assert data["source"] == "model" and data["model"] == "test-model"
    assert iou(data["nail"]["polygon"], truth) >= 0.9
    assert asked == [(image.pk, (480, 640, 3))]


def test_prelabel_registers_the_active_model_as_foreground_provider(client_for, nail_image):
    assert active_foreground in extensions.foreground_providers()
    image, _ = nail_image
    # No active model: the photo alone.
    assert client_for("annotator").post(url(image), {"points": [CLICK]}, format="json").json()["source"] == "image"


def test_the_active_model_probability_is_computed_once_per_image_and_version(client_for, nail_image, monkeypatch):
    from tests.prelabel_support import register_model, tiny_checkpoint
    from training import serving

    image, _ = nail_image
    version = register_model("click-tiny", tiny_checkpoint(), active=True)
    click_foreground.clear_cache()
    serving.clear_cache()
    client = client_for("annotator")
    first = client.post(url(image), {"points": [CLICK]}, format="json")
    assert first.status_code == 200, first.json()
    assert first.json()["source"] == "model" and first.json()["model"] == "click-tiny"
    assert click_foreground.cached_keys() == [click_foreground.cache_key(image, version)]
    calls = []
    monkeypatch.setattr(serving, "predictor_for", lambda v: calls.append(v) or (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(click_foreground, "predictor_for", serving.predictor_for)
    second = client.post(url(image), {"points": [CLICK, [480, 400, 0]]}, format="json")
    assert second.status_code == 200 and second.json()["source"] == "model" and not calls


def test_a_click_reads_the_labels_once(client_for, users, nail_image):
    """The endpoint reads the image's labels once per call (the permission check and the size/suggestion share
    them), also for accepted labels that are still incomplete (editable by annotators)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    image, _ = nail_image
    client = client_for("annotator")
    incomplete = {"nails": [{"polygon": [[10, 10], [40, 10], [40, 40], [10, 40]], "finger": None, "base": None, "tip": None}],
                  "ignore": []}
    for status in (Annotation.Status.UNLABELED, Annotation.Status.ACCEPTED):
        Annotation.objects.filter(image=image).update(status=status, geometry=incomplete)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(url(image), {"points": [CLICK]}, format="json")
        assert response.status_code == 200, response.json()
        reads = [q["sql"] for q in queries.captured_queries
                 if q["sql"].startswith("SELECT") and '"labeling_annotation"."geometry"' in q["sql"]]
        assert len(reads) == 1, (status, reads)
