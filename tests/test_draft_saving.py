"""Drafts save whatever the annotator drew: invalid shapes are kept apart and flagged, never held back;
submitting still needs valid, complete labels; snapshots (hence exports and training) never see an invalid shape."""
import json

import pytest

from curation.snapshots import build_snapshot
from dataset.geometry import validate_geometry
from labeling.annotations import import_annotation
from labeling.models import Annotation, AnnotationRevision

GOOD = {"id": "good", "polygon": [[10, 10], [30, 10], [30, 30], [10, 30]], "finger": 2, "base": [20, 28], "tip": [20, 12]}
BOW_TIE = {"id": "bow", "polygon": [[35, 5], [55, 25], [55, 5], [35, 25]], "finger": 7, "base": None, "tip": None}
BAD_IGNORE = [[2, 40], [12, 46], [12, 40], [2, 46]]  # crosses itself too


def put(client, image, geometry, version, status="draft"):
    return client.put(f"/api/images/{image.pk}/annotation/", json.dumps({"version": version, "geometry": geometry, "status": status}),
                      content_type="application/json")


@pytest.fixture
def image(make_image):
    return make_image(64, 48)


def test_a_draft_with_a_self_intersecting_nail_saves_both_nails_and_flags_the_bad_one(client_for, image):
    client = client_for("annotator")
    response = put(client, image, {"nails": [GOOD, BOW_TIE], "ignore": [BAD_IGNORE]}, 0)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 1 and body["status"] == "draft"
    assert [n["id"] for n in body["geometry"]["nails"]] == ["good"] and body["geometry"]["ignore"] == []
    flagged = {(shape["kind"], shape["index"]): shape for shape in body["invalid_shapes"]}
    assert set(flagged) == {("nail", 1), ("ignore", 0)}
    bow = flagged[("nail", 1)]
    assert bow["shape"]["id"] == "bow" and bow["shape"]["finger"] == 7
    assert bow["shape"]["polygon"] == [[float(x), float(y)] for x, y in BOW_TIE["polygon"]]
    assert [e["rule"] for e in bow["errors"]] == ["self_intersecting"]
    assert bow["errors"][0]["message"].startswith("nail 2: polygon crosses itself")
    assert [e["rule"] for e in flagged[("ignore", 0)]["errors"]] == ["self_intersecting"]

    # The stored labels: the valid geometry alone passes every rule; the bad shapes are kept beside it, in history too.
    annotation = Annotation.objects.get(image=image)
    assert validate_geometry(annotation.geometry, image.width, image.height).ok
    assert annotation.invalid_shapes == body["invalid_shapes"]
    assert AnnotationRevision.objects.get(annotation=annotation, version=1).invalid_shapes == body["invalid_shapes"]
    loaded = client.get(f"/api/images/{image.pk}/annotation/").json()
    assert loaded["invalid_shapes"] == body["invalid_shapes"] and loaded["geometry"] == body["geometry"]

    # Fixing it: the next draft without problems clears the flags.
    fixed = put(client, image, {"nails": [GOOD, {**BOW_TIE, "polygon": [[35, 5], [55, 5], [55, 25], [35, 25]]}]}, 1)
    assert fixed.status_code == 200 and fixed.json()["invalid_shapes"] == []
    assert [n["id"] for n in fixed.json()["geometry"]["nails"]] == ["good", "bow"]


def test_submitting_an_invalid_nail_is_a_400_naming_it_and_saves_nothing(client_for, image):
    client = client_for("annotator")
    assert put(client, image, {"nails": [GOOD, BOW_TIE]}, 0).status_code == 200
    response = put(client, image, {"nails": [GOOD, BOW_TIE]}, 1, status="submitted")
    assert response.status_code == 400
    body = response.json()
    assert "cannot be submitted" in body["detail"] and "nail 2: polygon crosses itself" in body["detail"]
    assert {(e["nail"], e["rule"]) for e in body["errors"]} == {(1, "self_intersecting"), (1, "landmarks_missing")}
    annotation = Annotation.objects.get(image=image)
    assert (annotation.version, annotation.status) == (1, "draft")
    assert [s["index"] for s in annotation.invalid_shapes] == [1]


@pytest.mark.parametrize("nail, rule", [
    ({**GOOD, "polygon": [[10, 10], ["a", 10], [30, 30]]}, "bad_point"),
    ({**GOOD, "finger": 11}, "bad_finger"),
    ({**GOOD, "colour": "red"}, "unknown_field"),
    ({**BOW_TIE, "finger": 0}, "bad_finger"),  # a drawing error does not let a structural one through
])
def test_json_that_no_drawing_makes_is_still_refused_whole(client_for, image, nail, rule):
    client = client_for("annotator")
    response = put(client, image, {"nails": [GOOD, nail]}, 0)
    assert response.status_code == 400
    assert "nothing was saved" in response.json()["detail"] and "nail 2" in response.json()["detail"]
    assert rule in {e["rule"] for e in response.json()["errors"]}
    assert Annotation.objects.get(image=image).version == 0


def test_a_snapshot_never_includes_an_invalid_nail(client_for, make_image, image):
    annotator, reviewer = client_for("annotator"), client_for("reviewer")
    accepted = make_image(64, 48)
    import_annotation(accepted, {"nails": [GOOD]}, status="accepted", note="test")
    assert put(annotator, image, {"nails": [GOOD, BOW_TIE]}, 0).status_code == 200

    snapshot = build_snapshot("with-drafts", include_submitted=True)  # a draft is never in, flagged shapes or not
    assert list(snapshot.items.values_list("image_id", flat=True)) == [accepted.pk]

    # Submitted and accepted once the bad nail is gone: the snapshot holds exactly the valid nail.
    assert put(annotator, image, {"nails": [GOOD, BOW_TIE]}, 1, status="submitted").status_code == 400
    assert put(annotator, image, {"nails": [GOOD]}, 1, status="submitted").status_code == 200
    assert reviewer.post(f"/api/images/{image.pk}/review/", {"decision": "accept"}, format="json").status_code == 200
    item = build_snapshot("after-review").items.get(image=image)
    assert [n["id"] for n in item.geometry["nails"]] == ["good"]
    assert "invalid_shapes" not in item.geometry and validate_geometry(item.geometry, 64, 48, require_complete=True).ok
    assert Annotation.objects.get(image=image).invalid_shapes == []


def test_imported_labels_replace_flagged_shapes(client_for, image):
    assert put(client_for("annotator"), image, {"nails": [GOOD, BOW_TIE]}, 0).status_code == 200
    import_annotation(image, {"nails": [GOOD]}, status="accepted", note="re-import", replace=True)
    assert Annotation.objects.get(image=image).invalid_shapes == []
