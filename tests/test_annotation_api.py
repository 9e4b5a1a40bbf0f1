"""Annotation GET / PUT: valid saves, optimistic locking, geometry rules, atomicity, concurrency, review."""
import json
import threading

import pytest
from django.db import connection

from dataset.geometry import DRAWING_RULES
from labeling.models import Annotation, AnnotationRevision

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def nail(polygon=SQUARE, finger=None, base=None, tip=None, **extra):
    return {"polygon": polygon, "finger": finger, "base": base, "tip": tip, **extra}


def complete_nail(finger=2, polygon=SQUARE):
    return nail(polygon, finger=finger, base=[20, 28], tip=[20, 12])


def put(client, image, geometry, version, status="draft"):
    body = json.dumps({"version": version, "geometry": geometry, "status": status})
    body = body.replace('"__HUGE__"', "1e400")  # valid JSON whose number overflows to infinity
    return client.put(f"/api/images/{image.pk}/annotation/", body, content_type="application/json")


@pytest.fixture
def image(make_image):
    return make_image(64, 48)


def test_get_new_annotation_is_empty_version_0(client_for, image):
    response = client_for("annotator").get(f"/api/images/{image.pk}/annotation/")
    assert response.status_code == 200
    assert response.json()["version"] == 0
    assert response.json()["status"] == "unlabeled"
    assert response.json()["geometry"] == {"nails": [], "ignore": []}


def test_valid_save_bumps_version_claims_image_and_records_revision(client_for, users, image):
    client = client_for("annotator")
    response = put(client, image, {"nails": [nail(finger=3)], "ignore": []}, 0)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 1 and body["status"] == "draft" and body["assignee"] == "ann"
    assert body["geometry"]["nails"][0]["polygon"] == [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]
    assert client.get(f"/api/images/{image.pk}/annotation/").json()["geometry"] == body["geometry"]
    revision = AnnotationRevision.objects.get(annotation__image=image)
    assert (revision.version, revision.author, revision.source) == (1, users["annotator"], "human")


def test_stale_version_gets_409_with_current_state(client_for, image):
    client = client_for("annotator")
    assert put(client, image, {"nails": [nail()]}, 0).status_code == 200
    response = put(client, image, {"nails": []}, 0)
    assert response.status_code == 409
    assert response.json()["current"]["version"] == 1
    assert len(response.json()["current"]["geometry"]["nails"]) == 1
    assert Annotation.objects.get(image=image).version == 1


BAD_GEOMETRIES = {
    "too_few_vertices": {"nails": [nail([[1, 1], [5, 5]])]},
    "self_intersecting": {"nails": [nail([[0, 0], [10, 10], [10, 0], [0, 10]])]},
    "zero_area": {"nails": [nail([[1, 1], [5, 5], [9, 9]])]},
    "outside_image": {"nails": [nail([[10, 10], [90, 10], [30, 30]])]},
    "not_finite": {"nails": [nail([[10, 10], ["__HUGE__", 10], [30, 30]])]},
    "bad_finger": {"nails": [nail(finger=11)]},
    "landmarks_incomplete": {"nails": [nail(base=[20, 20])]},
    "landmark_outside_nail": {"nails": [nail(base=[20, 20], tip=[60, 45])]},
    "landmarks_equal": {"nails": [nail(base=[20, 20], tip=[20, 20])]},
    "unknown_field": {"nails": [nail(colour="red")]},
    "bad_point": {"nails": [nail([[10, 10], ["a", 10], [30, 30]])]},
    "nails_not_a_list": {"nails": "many"},
}


@pytest.mark.parametrize("rule", sorted(BAD_GEOMETRIES))
def test_each_geometry_rule_is_a_400_naming_the_nail_and_saves_nothing(client_for, image, rule):
    client = client_for("annotator")
    good = put(client, image, {"nails": [complete_nail()]}, 0)
    assert good.status_code == 200
    geometry = BAD_GEOMETRIES[rule]
    if rule not in ("nails_not_a_list",):
        geometry = {"nails": [complete_nail(finger=7)] + geometry["nails"]}  # the bad one is the 2nd nail
    # A draft keeps shapes that break drawing rules, flagged (tests/test_draft_saving.py); a submission never does.
    response = put(client, image, geometry, 1, status="submitted" if rule in DRAWING_RULES else "draft")
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert rule in {error["rule"] for error in errors}
    if rule != "nails_not_a_list":
        error = next(e for e in errors if e["rule"] == rule)
        assert error["nail"] == 1 and error["message"].startswith("nail 2")
    annotation = Annotation.objects.get(image=image)
    assert annotation.version == 1 and len(annotation.geometry["nails"]) == 1
    assert annotation.revisions.count() == 1


def test_submit_requires_class_and_landmarks_but_draft_does_not(client_for, image):
    client = client_for("annotator")
    response = put(client, image, {"nails": [nail()]}, 0, status="submitted")
    assert response.status_code == 400
    assert {e["rule"] for e in response.json()["errors"]} == {"finger_missing", "landmarks_missing"}
    assert put(client, image, {"nails": [nail()]}, 0, status="draft").status_code == 200
    assert put(client, image, {"nails": [complete_nail()]}, 1, status="submitted").json()["status"] == "submitted"


def test_duplicate_finger_is_a_warning_not_an_error(client_for, image):
    other = [[35, 10], [50, 10], [50, 30], [35, 30]]
    response = put(client_for("annotator"), image, {"nails": [nail(finger=4), nail(other, finger=4)]}, 0)
    assert response.status_code == 200
    assert [w["rule"] for w in response.json()["warnings"]] == ["duplicate_finger"]


def test_missing_or_bad_version_is_400(client_for, image):
    client = client_for("annotator")
    url = f"/api/images/{image.pk}/annotation/"
    assert client.put(url, {"geometry": {"nails": []}}, format="json").status_code == 400
    assert client.put(url, {"version": "x", "geometry": {"nails": []}}, format="json").status_code == 400
    assert client.put(url, {"version": 0, "geometry": {"nails": []}, "status": "accepted"}, format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_two_clients_saving_from_the_same_version_exactly_one_wins(client_for, make_image):
    image = make_image(64, 48)
    client_a, client_b = client_for("admin"), client_for("admin")
    geometry_a = {"nails": [nail(finger=1)]}
    geometry_b = {"nails": [nail([[35, 10], [50, 10], [50, 30], [35, 30]], finger=6)]}
    barrier = threading.Barrier(2)
    responses = {}

    def save(name, client, geometry):
        try:
            barrier.wait()
            responses[name] = put(client, image, geometry, 0)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=("a", client_a, geometry_a)),
               threading.Thread(target=save, args=("b", client_b, geometry_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in responses.values())
    assert codes == [200, 409], {k: r.json() for k, r in responses.items()}
    loser = next(name for name, r in responses.items() if r.status_code == 409)
    current = responses[loser].json()["current"]
    assert current["version"] == 1
    # The loser keeps its own geometry as the next version: nothing is lost.
    retry = put(client_a if loser == "a" else client_b, image, geometry_a if loser == "a" else geometry_b, current["version"])
    assert retry.status_code == 200 and retry.json()["version"] == 2
    revisions = list(AnnotationRevision.objects.filter(annotation__image=image).order_by("version"))
    assert [r.version for r in revisions] == [1, 2]
    fingers = sorted(r.geometry["nails"][0]["finger"] for r in revisions)
    assert fingers == [1, 6]


def test_review_accept_and_reject_flow(client_for, image):
    annotator, reviewer = client_for("annotator"), client_for("reviewer")
    assert put(annotator, image, {"nails": [complete_nail()]}, 0, status="submitted").status_code == 200
    url = f"/api/images/{image.pk}/review/"
    assert reviewer.post(url, {"decision": "reject"}, format="json").status_code == 400  # needs a comment
    rejected = reviewer.post(url, {"decision": "reject", "comment": "tip is on the cuticle", "version": 1}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    seen = annotator.get(f"/api/images/{image.pk}/annotation/").json()
    assert seen["review_comment"] == "tip is on the cuticle" and seen["reviewer"] == "rev" and seen["version"] == 2
    assert reviewer.post(url, {"decision": "accept"}, format="json").status_code == 409  # not submitted any more
    assert put(annotator, image, {"nails": [complete_nail(finger=3)]}, 2, status="submitted").status_code == 200
    assert reviewer.post(url, {"decision": "accept", "version": 2}, format="json").status_code == 409  # stale
    accepted = reviewer.post(url, {"decision": "accept", "version": 3}, format="json")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    locked = put(annotator, image, {"nails": []}, 4)
    assert locked.status_code == 403 and "accepted" in locked.json()["detail"]
    history = annotator.get(f"/api/images/{image.pk}/revisions/").json()["results"]
    assert [(r["version"], r["status"]) for r in history] == [(4, "accepted"), (3, "submitted"), (2, "rejected"), (1, "submitted")]


def test_image_list_filters_and_pagination(client_for, users, make_image, participant):
    from labeling.models import Participant

    other = Participant.objects.create(code="P002")
    images = [make_image() for _ in range(3)] + [make_image(owner=other)]
    admin = client_for("admin")
    admin.post(f"/api/images/{images[0].pk}/assign/", {"assignee": "ann"}, format="json")
    put(client_for("annotator"), images[0], {"nails": [nail()]}, 0)
    assert admin.get("/api/images/?participant=P002").json()["count"] == 1
    assert [i["id"] for i in admin.get("/api/images/?status=draft").json()["results"]] == [images[0].pk]
    assert admin.get("/api/images/?assignee=ann").json()["count"] == 1
    assert admin.get("/api/images/?assignee=none").json()["count"] == 3
    page = admin.get("/api/images/?page_size=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]


def test_nail_count_in_list_and_detail(client_for, make_image):
    image, empty = make_image(), make_image()
    admin = client_for("admin")
    put(admin, image, {"nails": [nail(), nail([[35, 10], [50, 10], [50, 30], [35, 30]])]}, 0)
    listed = {row["id"]: row["nail_count"] for row in admin.get("/api/images/").json()["results"]}
    assert listed == {image.pk: 2, empty.pk: 0}
    assert admin.get(f"/api/images/{image.pk}/").json()["nail_count"] == 2
