"""Model drafts mark what the model proposed as suggestions (issues #16 and #18): a drafted nail's finger and
base/tip carry ``suggested`` marks with the post-processing's confidences, a binary-only model marks nothing,
a human's finger is never replaced, a reviewer's accept confirms the marks, and the annotation page's open
call hands each draft nail's confidences over (prelabel/drafts.py, prelabel/api.py)."""
import numpy as np
import pytest

from dataset.geometry import confirmed_labels, nail_is_complete, validate_geometry
from labeling.annotations import save_annotation
from labeling.models import Annotation, AnnotationRevision
from ml.postprocess import Nail, postprocess
from prelabel import drafts, proposals
from prelabel.models import Prediction
from training.models import ModelVersion
from training.serving import ImagePrediction

WIDTH, HEIGHT = 64, 48
LEFT, RIGHT = (slice(10, 38), slice(8, 24)), (slice(10, 38), slice(40, 56))  # two nails: rows, columns


def model_outputs(with_heads: bool):
    """fg probability (two rectangular nails), and with ``with_heads`` class probabilities (finger 2 on the
    left nail at 0.8, finger 7 on the right at 0.6) and a direction field (up on the left nail, everywhere;
    on the right nail half up, half right: a less coherent direction)."""
    fg = np.full((HEIGHT, WIDTH), 0.02, np.float32)
    fg[LEFT] = fg[RIGHT] = 0.9
    if not with_heads:
        return fg, None, None
    cls = np.full((HEIGHT, WIDTH, 10), 0.2 / 9, np.float32)
    cls[LEFT] = np.full(10, 0.2 / 9, np.float32)
    cls[LEFT + (1,)] = 0.8
    cls[RIGHT] = np.full(10, 0.4 / 9, np.float32)
    cls[RIGHT + (6,)] = 0.6
    field = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    field[LEFT] = (0.0, -1.0)
    field[10:38, 40:48] = (0.0, -1.0)
    field[10:38, 48:56] = (1.0, 0.0)
    return fg, cls, field


def predict(with_heads: bool) -> ImagePrediction:
    fg, cls, field = model_outputs(with_heads)
    return ImagePrediction(postprocess(fg, cls, field), fg, uncertainty=0.1, input_size=(HEIGHT, WIDTH), seconds=0.01)


def model_version(name: str) -> ModelVersion:
    from django.core.files.base import ContentFile

    version = ModelVersion(name=name, config={}, metrics={"miou": 0.5}, snapshot_content_hash="x")
    version.weights.save("model.pt", ContentFile(b"not used"), save=False)
    version.save()
    return version


@pytest.mark.django_db
def test_a_draft_marks_the_models_finger_and_landmarks_as_suggested_with_its_confidences(make_image):
    image = make_image(WIDTH, HEIGHT)
    result = predict(with_heads=True)
    prediction = drafts.save_prediction(image, model_version("heads"), result)
    assert prediction.draft_state == "drafted"
    annotation = Annotation.objects.get(image=image)
    nails = annotation.geometry["nails"]
    assert [n["finger"] for n in nails] == [2, 7]
    for nail, source in zip(nails, result.nails):
        assert nail["suggested"] == {"finger": round(source.class_confidence, 3),
                                     "landmarks": round(source.extra["field_coherence"], 3)}
        assert nail["base"] is not None and not nail_is_complete(nail)
        assert confirmed_labels(nail) == {"finger": None, "base": None, "tip": None}
    left, right = nails
    assert left["suggested"]["finger"] == pytest.approx(0.8, abs=0.01)
    assert right["suggested"]["finger"] == pytest.approx(0.6, abs=0.01)
    assert left["suggested"]["landmarks"] == pytest.approx(1.0, abs=0.01)  # the field agrees everywhere
    assert 0.6 < right["suggested"]["landmarks"] < 0.8                      # half up, half right: |(1, 1)| / 2
    assert validate_geometry(annotation.geometry, WIDTH, HEIGHT).ok
    assert not validate_geometry(annotation.geometry, WIDTH, HEIGHT, require_complete=True).ok  # confirm first
    kept = [n for n in prediction.nails if not n.get("dropped")]
    assert [n["direction_confidence"] for n in kept] == [round(n.extra["field_coherence"], 4) for n in result.nails]
    assert all(0.85 < n["confidence"] <= 0.9 for n in kept)  # the outline confidence stays with the prediction


@pytest.mark.django_db
def test_a_binary_only_draft_marks_nothing(make_image):
    image = make_image(WIDTH, HEIGHT)
    drafts.save_prediction(image, model_version("binary"), predict(with_heads=False))
    nails = Annotation.objects.get(image=image).geometry["nails"]
    assert len(nails) == 2
    for nail in nails:
        assert nail["finger"] is None and "suggested" not in nail
        # No field: the nail is oriented from the photo or not at all; only oriented landmarks are marked.
        assert nail["base"] is None


def test_landmarks_oriented_from_the_photo_carry_the_orientation_confidence():
    mask = np.ones((28, 16), bool)
    photo_nail = Nail(finger=None, bbox=(8, 10, 16, 28), mask=mask, area=mask.size, direction=(0.0, -1.0), angle=-90.0,
                      direction_source="image", base=(16.0, 37.0), tip=(16.0, 11.0),
                      polygon=[[8.0, 10.0], [23.0, 10.0], [23.0, 37.0], [8.0, 37.0]], confidence=0.9,
                      extra={"orientation_confidence": 0.31})
    shape_nail = Nail(**{**photo_nail.__dict__, "direction_source": "shape", "extra": {}})
    geometry, kept, dropped = drafts.nails_to_geometry([photo_nail, shape_nail], WIDTH, HEIGHT)
    assert not dropped and kept[0]["direction_confidence"] == 0.31 and kept[1]["direction_confidence"] is None
    assert geometry["nails"][0]["suggested"] == {"landmarks": 0.31} and geometry["nails"][0]["base"] == [16.0, 37.0]
    assert "suggested" not in geometry["nails"][1] and geometry["nails"][1]["base"] is None


@pytest.mark.django_db
def test_a_humans_finger_is_never_replaced_or_marked(make_image, users):
    image = make_image(WIDTH, HEIGHT)
    human = {"nails": [{"polygon": [[8, 10], [24, 10], [24, 38], [8, 38]], "finger": 4, "base": None, "tip": None}],
             "ignore": []}
    save_annotation(image, users["annotator"], geometry=human, version=0)
    prediction = drafts.save_prediction(image, model_version("heads"), predict(with_heads=True))
    assert prediction.draft_state == "skipped_human" and prediction.draft_version is None
    annotation = Annotation.objects.get(image=image)
    assert annotation.version == 1 and annotation.geometry["nails"][0]["finger"] == 4
    assert "suggested" not in annotation.geometry["nails"][0]
    assert not AnnotationRevision.objects.filter(annotation=annotation, source="model").exists()


@pytest.mark.django_db
def test_a_reviewers_accept_confirms_the_suggestions(make_image, client_for):
    image = make_image(WIDTH, HEIGHT)
    prediction = drafts.save_prediction(image, model_version("heads"), predict(with_heads=True))
    assert all("suggested" in n for n in Annotation.objects.get(image=image).geometry["nails"])
    accepted = client_for("reviewer").post(f"/api/prelabel/predictions/{prediction.pk}/accept/")
    assert accepted.status_code == 200, accepted.content
    annotation = Annotation.objects.get(image=image)
    assert annotation.status == "submitted" and [n["finger"] for n in annotation.geometry["nails"]] == [2, 7]
    assert all("suggested" not in n and nail_is_complete(n) for n in annotation.geometry["nails"])
    assert AnnotationRevision.objects.get(annotation=annotation, version=annotation.version).geometry == annotation.geometry


@pytest.mark.django_db
def test_the_annotation_page_gets_each_draft_nails_confidences(make_image, client_for):
    image = make_image(WIDTH, HEIGHT)
    result = predict(with_heads=True)
    drafts.save_prediction(image, model_version("heads"), result)
    opened = client_for("annotator").post("/api/prelabel/open/", {"image": image.pk}, format="json")
    assert opened.status_code == 201, opened.content
    nails = opened.json()["draft"]["nails"]
    assert [n["nail"] for n in nails] == [0, 1] and [n["finger"] for n in nails] == [2, 7]
    for entry, source in zip(nails, result.nails):
        assert entry["confidence"] == round(source.confidence, 4)
        assert entry["class_confidence"] == round(source.class_confidence, 4)
        assert entry["direction_confidence"] == round(source.extra["field_coherence"], 4)


@pytest.mark.django_db
def test_with_the_photo_and_trained_heads_the_draft_takes_the_label_suggestions_that_weigh_the_votes(make_image):
    """The prelabel job passes the photo: a model whose heads trained votes per nail (ml.nail_votes), and the
    draft's fingers and base/tip are ml.label_suggestions' (layout, photo and votes together: one finger per
    nail of the hand, the right one here though the class head alone is wrong on two nails), marked suggested
    with the suggestions' confidences."""
    import cv2
    from PIL import Image as PILImage

    from labeling.intake import create_image
    from labeling.models import Participant
    from ml.nail_votes import nail_votes
    from tests.test_label_suggestions import hand_parts, render

    photo, truth = render((360, 360), [hand_parts((180, 200), 20, 0, False)])
    fg = np.zeros((360, 360), np.float32)
    cls = np.full((360, 360, 10), 0.02, np.float32)
    field = np.zeros((360, 360, 2), np.float32)
    voted_finger = [n["finger"] for n in truth]
    voted_finger[0], voted_finger[1] = voted_finger[1], voted_finger[0]  # a weak class head's mistake
    for nail, finger in zip(truth, voted_finger):
        mask = np.zeros((360, 360), np.uint8)
        cv2.fillPoly(mask, [np.round(nail["polygon"]).astype(np.int32)], 1)
        inside = mask > 0
        fg[inside] = 0.95
        cls[inside, finger - 1] = 0.6
        field[inside] = (nail["tip"] - nail["base"]) / np.linalg.norm(nail["tip"] - nail["base"])
    nails = postprocess(fg, cls, field)
    votes = nail_votes([n.polygon for n in nails], cls, field, fg)
    result = ImagePrediction(nails, fg, uncertainty=0.1, input_size=(360, 360), seconds=0.01, votes=votes)
    participant = Participant.objects.create(code="VOTES", consent_version="v1")
    image, _ = create_image(participant, PILImage.fromarray(photo), "PNG")

    plain = drafts.save_prediction(image, model_version("plain"), result, write=False)
    assert all("label_source" not in n for n in plain.nails)  # without the photo: the model's own fields ...

    def finger_errors(nails):
        return sum(n["finger"] != min(truth, key=lambda t: np.linalg.norm(np.mean(t["polygon"], axis=0)
                                                                          - np.mean(n["polygon"], axis=0)))["finger"]
                   for n in nails)
    assert finger_errors(plain.nails) == 2  # ... the class head's argmax, wrong on two nails

    prediction = drafts.save_prediction(image, model_version("voted"), result, photo=photo)
    assert prediction.draft_state == "drafted"
    drafted = Annotation.objects.get(image=image).geometry["nails"]
    assert len(drafted) == len(truth)
    assert finger_errors(drafted) == 0
    for nail in drafted:
        match = min(truth, key=lambda t: np.linalg.norm(np.mean(t["polygon"], axis=0) - np.mean(nail["polygon"], axis=0)))
        assert set(nail["suggested"]) == {"finger", "landmarks"}
        tip_dir = np.subtract(nail["tip"], nail["base"])
        truth_dir = match["tip"] - match["base"]
        assert tip_dir @ truth_dir > 0.8 * np.linalg.norm(tip_dir) * np.linalg.norm(truth_dir)
    assert len({n["finger"] for n in drafted}) == len(drafted)
    assert all(n["label_source"] == "ml.label_suggestions" for n in prediction.nails if not n.get("dropped"))
    assert validate_geometry({"nails": drafted, "ignore": []}, 360, 360).ok


@pytest.mark.django_db
def test_a_draft_nail_the_model_is_unsure_of_is_proposed_not_shown_as_a_nail(make_image, client_for):
    """Issue #18: the open call marks a draft nail whose outline confidence is under PROPOSE_BELOW as
    proposed (the page proposes it to accept or reject with one key); a sure nail stays a nail."""
    image = make_image(WIDTH, HEIGHT)
    fg, _, _ = model_outputs(with_heads=False)
    fg[RIGHT] = proposals.PROPOSE_BELOW - 0.05          # above the nail threshold, under the proposal one
    drafts.save_prediction(image, model_version("unsure"), ImagePrediction(postprocess(fg, None, None), fg, uncertainty=0.1,
                                                                           input_size=(HEIGHT, WIDTH), seconds=0.01))
    assert len(Annotation.objects.get(image=image).geometry["nails"]) == 2   # the draft keeps both
    draft = client_for("annotator").post("/api/prelabel/open/", {"image": image.pk}, format="json").json()["draft"]
    assert draft["propose_below"] == proposals.PROPOSE_BELOW and "suggest_below" not in draft
    by_column = sorted(draft["nails"], key=lambda n: n["nail"])
    assert [n["proposed"] for n in by_column] == [n["confidence"] < proposals.PROPOSE_BELOW for n in by_column]
    assert sorted(n["proposed"] for n in by_column) == [False, True]
    assert not any("suggestion" in n for n in by_column)   # the label suggestions' word, not this one
    assert proposals.is_proposed({"confidence": None}) is False
