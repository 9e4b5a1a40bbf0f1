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
from prelabel import active_prediction, click_foreground
from prelabel.click_foreground import active_foreground
from training import serving
from tests.test_click_segmentation import iou, synthetic_nail

CLICK = [320, 245, 1]


@pytest.fixture
def nail_image(participant):
    """A 640x480 photo of one synthetic nail, and the nail's mask."""
    photo, truth = synthetic_nail(seed=11)
    image, _ = create_image(participant, PILImage.fromarray(photo), "PNG")
    photos.decoded.clear()
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
    assert photos.decoded.keys() == [(image.pk, image.file.name)]
    again = client.post(url(image), {"points": [CLICK, [480, 400, 0]]}, format="json")
    assert again.status_code == 200 and again.json()["nail"]
    assert photos.decoded.keys() == [(image.pk, image.file.name)]
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


def test_the_pages_nails_when_sent_are_the_context_in_place_of_the_saved_ones(client_for, users, nail_image, monkeypatch):
    """The page sends its nails (saved or not: autosave waits for a pause) with each click; the suggestion then
    reads them, their confirmed fields as constraints, and a nail still being drawn (a self-intersecting outline) is
    left out. Without ``nails`` the saved labels are the context."""
    image, truth = nail_image
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    far = (contours[0].reshape(-1, 2) + [-250, 0]).tolist()
    saved = [[500, 20], [560, 20], [560, 80], [500, 80]]
    save_annotation(image, users["annotator"], version=0,
                    geometry={"nails": [{"polygon": saved, "finger": 7, "base": None, "tip": None}], "ignore": []})
    seen = []
    real = click_nail.suggest_on_small

    def spy(polygons, known, small, scale, votes=None):
        seen.append((polygons, known))
        return real(polygons, known, small, scale, votes)

    monkeypatch.setattr(click_nail, "suggest_on_small", spy)
    client = client_for("annotator")
    drawing = [[10, 10], [60, 60], [60, 10], [10, 60]]  # a bow tie: still being drawn
    page = [{"polygon": far, "finger": 1, "base": None, "tip": None},
            {"polygon": drawing, "finger": None, "base": None, "tip": None},
            {"polygon": saved, "finger": 7, "base": None, "tip": None, "suggested": {"finger": 0.4}}]
    data = client.post(url(image), {"points": [CLICK], "nails": page}, format="json").json()
    polygons, known = seen[-1]
    assert len(polygons) == 3 and polygons[0] == far and polygons[1] == saved
    assert [k["finger"] for k in known[:2]] == [1, None] and known[2] is None  # suggested 7: no constraint; the new nail
    assert data["nail"]["finger"] != 1                       # the thumb is the page's other nail
    client.post(url(image), {"points": [CLICK]}, format="json")
    polygons, known = seen[-1]
    assert len(polygons) == 2 and polygons[0] == saved and known[0]["finger"] == 7   # the saved labels


@pytest.mark.parametrize("nails, problem", [
    ("all of them", "'nails' must be a list"),
    ([42], "nail 1"),
    ([{"polygon": "square", "finger": None, "base": None, "tip": None}], "nail 1"),
    ([{"polygon": [[10, 10], [40, 10], [40, 40]], "finger": 11, "base": None, "tip": None}], "nail 1"),
    ([{"polygon": [[10, 10], [40, 10], [40, 40]], "finger": None, "base": None, "tip": None}] * 501, "too many nails"),
])
def test_bad_page_nails_are_answered_400_naming_the_problem(client_for, nail_image, nails, problem):
    image, _ = nail_image
    client = client_for("annotator")
    response = client.post(url(image), {"points": [CLICK], "nails": nails}, format="json")
    assert response.status_code == 400
    assert problem in response.json()["nails"][0]
    good = [{"polygon": [[10, 10], [40, 10], [40, 40]], "finger": 2, "base": None, "tip": None}]
    assert client.post(url(image), {"points": [CLICK], "nails": good}, format="json").status_code == 200


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


def test_with_a_model_the_nails_it_sees_not_yet_drawn_are_the_suggestions_context(client_for, nail_image, monkeypatch):
    """The first nail clicked on a hand is read in the hand's layout: with a model's map showing three more nails
    (and the clicked one, which is not counted twice), the suggestion reads four nails, not one (whose finger
    would be a guess); nothing else about the proposal changes."""
    image, truth = nail_image
    client = client_for("annotator")
    read = []
    real = click_nail.suggest_on_small

    def spy(polygons, known, *args):
        read.append(len(polygons))
        return real(polygons, known, *args)

    monkeypatch.setattr(click_nail, "suggest_on_small", spy)
    alone = client.post(url(image), {"points": [CLICK]}, format="json").json()
    assert read == [1] and "only 1 nail of this hand: a guess" in alone["suggestion"]["reasons"]

    hand = truth.astype(np.float32)
    for centre, axes in (((180, 275), (38, 52)), ((460, 255), (40, 54)), ((590, 330), (30, 40))):
        cv2.ellipse(hand, centre, axes, 0, 0, 360, 1.0, -1)
    hand = cv2.GaussianBlur(hand, (0, 0), 2.0)
    monkeypatch.setattr(extensions, "_foreground_providers", [])
    extensions.register_foreground_provider(lambda img, rgb: (hand, "test-model"))
    data = client.post(url(image), {"points": [CLICK]}, format="json").json()
    assert read == [1, 4]
    assert data["source"] == "model" and iou(data["nail"]["polygon"], truth) >= 0.9
    assert not any(reason.startswith("only ") for reason in data["suggestion"]["reasons"])


@pytest.mark.parametrize("finger, direction", [(8, [0.0, 1.0]), (2, [0.0, -1.0])])
def test_a_registered_vote_provider_weighs_in_the_click_proposals_finger_and_direction(
        client_for, nail_image, monkeypatch, settings, finger, direction):
    """The active model's per-nail votes (a vote provider, as pre-labeling registers) are asked for the image's
    nails plus the proposal, and its finger and base/tip follow a confident vote weighed as
    ``NAILSET_MODEL_VOTE_WEIGHTS`` says; without one they do not say so."""
    settings.NAILSET_MODEL_VOTE_WEIGHTS = {"finger": 1.0, "direction": 1.0}
    image, _ = nail_image
    client = client_for("annotator")
    plain_answer = client.post(url(image), {"points": [CLICK]}, format="json").json()
    plain, plain_nail = plain_answer["suggestion"], plain_answer["nail"]
    assert "model votes" not in plain["reasons"]
    asked = []

    def provider(img, rgb, polygons):
        asked.append(len(polygons))
        probs = [0.01] * 10
        probs[finger - 1] = 0.91
        return [{"finger_probs": probs, "direction": direction, "direction_confidence": 1.0} for _ in polygons]

    monkeypatch.setattr(extensions, "_vote_providers", [])
    extensions.register_vote_provider(lambda img, rgb, polygons: None)   # one without votes is skipped
    extensions.register_vote_provider(provider)
    data = client.post(url(image), {"points": [CLICK]}, format="json").json()
    assert asked == [1]                     # no saved nails: the proposal alone
    nail = data["nail"]
    assert nail["finger"] == finger and "model votes" in data["suggestion"]["reasons"]
    tip_minus_base = np.subtract(nail["tip"], nail["base"])
    assert float(tip_minus_base @ np.asarray(direction)) > 0.9 * float(np.hypot(*tip_minus_base))
    # With its direction weighed 0 (the default, bench/fit_model_votes.py) the proposal's direction is its own.
    settings.NAILSET_MODEL_VOTE_WEIGHTS = {"direction": 0.0}
    unheard = client.post(url(image), {"points": [CLICK]}, format="json").json()["nail"]
    assert unheard["finger"] == finger and (unheard["base"], unheard["tip"]) == (plain_nail["base"], plain_nail["tip"])


def test_prelabel_registers_the_active_model_as_foreground_provider(client_for, nail_image):
    assert active_foreground in extensions.foreground_providers()
    image, _ = nail_image
    # No active model: the photo alone.
    assert client_for("annotator").post(url(image), {"points": [CLICK]}, format="json").json()["source"] == "image"


@pytest.fixture
def active_tiny_model(db):
    """The tiny test checkpoint as the active model, every cache of its outputs empty."""
    from tests.prelabel_support import register_model, tiny_checkpoint

    version = register_model("click-tiny", tiny_checkpoint(), active=True)
    for cache in (active_prediction.outputs, click_foreground.maps, serving.predictors):
        cache.clear()
    yield version
    for cache in (active_prediction.outputs, click_foreground.maps, serving.predictors):
        cache.clear()


def count_network_runs(version, monkeypatch) -> list:
    """Each forward pass of the served predictor's real network, appended to the list returned."""
    model = serving.predictor_for(version).model
    runs, forward = [], model.forward
    monkeypatch.setattr(model, "forward", lambda *args, **kwargs: runs.append(1) or forward(*args, **kwargs))
    return runs


@pytest.mark.parametrize("click_first", [True, False])
def test_click_a_nail_and_the_model_votes_share_one_network_run(client_for, users, nail_image, active_tiny_model,
                                                                 monkeypatch, click_first):
    """The active model runs once per photo for click-a-nail's probability map and the label suggestions' votes,
    in either order; later clicks and suggestions (after each autosave) run nothing."""
    image, truth = nail_image
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    save_annotation(image, users["annotator"], version=0, geometry={
        "nails": [{"polygon": contours[0].reshape(-1, 2).tolist(), "finger": None, "base": None, "tip": None}],
        "ignore": []})
    runs = count_network_runs(active_tiny_model, monkeypatch)
    client = client_for("annotator")

    def click(points):
        response = client.post(url(image), {"points": points}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["source"] == "model" and response.json()["model"] == "click-tiny"

    def suggest():
        response = client.get(f"/api/images/{image.pk}/label-suggestions/")
        assert response.status_code == 200, response.json()
        assert all("model votes" in n["suggestion"]["reasons"] for n in response.json()["nails"])

    first, second = (click, suggest) if click_first else (suggest, click)
    first([CLICK]) if click_first else first()
    assert len(runs) == 1
    second() if click_first else second([CLICK])
    assert len(runs) == 1
    click([CLICK, [480, 400, 0]])
    suggest()
    assert len(runs) == 1
    key = active_prediction.cache_key(image, active_tiny_model)
    assert active_prediction.outputs.keys() == [key] and click_foreground.maps.keys() == [key]
    # With the kept outputs and map gone (evicted, as for new weights or a replaced photo), it runs again.
    active_prediction.outputs.clear()
    click_foreground.maps.clear()
    click([CLICK])
    assert len(runs) == 2


@pytest.mark.parametrize("size", [(360, 360), (1080, 1080), (600, 900)])
def test_the_kept_outputs_give_click_a_nail_the_full_photo_predictions_map(participant, active_tiny_model, size):
    """The map click-a-nail reads, from the outputs kept at the network's input size, is the one the predictor
    gives for the full photo (same network input; upsampled in logits the same way) within float16 and uint8
    rounding, for photos of several sizes and shapes (the network's input is 64 px here)."""
    from ml.predict import foreground_at
    from tests.prelabel_support import nail_photo

    # Nails like those the tiny model was trained on (pink ellipses, a third of the picture long).
    image, _ = create_image(participant, nail_photo(96, 96, nails=((34, 38, 14, 9, 0.4), (64, 60, 14, 9, 2.0))), "PNG")
    rgb = cv2.resize(photos.photo_of(image)[0], size[::-1], interpolation=cv2.INTER_LINEAR)
    predictor = serving.predictor_for(active_tiny_model)
    full = np.clip(np.round(predictor(rgb).fg_prob * 255.0), 0, 255).astype(np.int16)
    kept = foreground_at(active_prediction.kept_outputs(image, rgb, active_tiny_model).fg_prob, *size).astype(np.int16)
    difference = np.abs(full - kept)
    assert kept.shape == size and full.max() - full.min() > 40   # a map with contrast, not a flat one
    assert difference.max() <= 1 and difference.mean() < 0.05, (difference.max(), difference.mean())
    # The comparison can fail: the same outputs upsampled otherwise (nearest) are farther off.
    nearest = cv2.resize(active_prediction.kept_outputs(image, rgb, active_tiny_model).fg_prob.astype(np.float32),
                         size[::-1], interpolation=cv2.INTER_NEAREST)
    off = np.abs(full - np.round(nearest * 255))
    assert off.max() > 1 or off.mean() >= 0.05, (off.max(), off.mean())  # it fails the bound the kept map meets


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
