"""Every role against every endpoint: the denials are proven, not only the allowed paths."""
import io

import pytest
from rest_framework.test import APIClient

from jobs.runner import enqueue_job
from labeling.models import Annotation
from tests.conftest import jpeg_bytes, synthetic_picture

COMPLETE = {"nails": [{"polygon": [[10, 10], [30, 10], [30, 30], [10, 30]], "finger": 2, "base": [20, 28], "tip": [20, 12]}]}
ROLES = ["anonymous", "nobody", "participant", "annotator", "reviewer", "admin"]


def upload_body():
    return {"file": io.BytesIO(jpeg_bytes(synthetic_picture(40, 30))), "participant": "P001"}


# name: (method, url, body, format, {role: expected status}); "ok" rows list the role-specific codes.
DENY_ALL_BUT_ADMIN = {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 403, "reviewer": 403}
STAFF_READ = {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 200, "reviewer": 200, "admin": 200}
ENDPOINTS = {
    "participants.list": ("get", "/api/participants/", None, {**DENY_ALL_BUT_ADMIN, "admin": 200}),
    "participants.create": ("post", "/api/participants/", {"code": "P777"}, {**DENY_ALL_BUT_ADMIN, "admin": 201}),
    "participants.detail": ("get", "/api/participants/P001/", None, {**DENY_ALL_BUT_ADMIN, "admin": 200}),
    "participants.rotate": ("post", "/api/participants/P001/rotate-token/", None, {**DENY_ALL_BUT_ADMIN, "admin": 200}),
    "participants.delete": ("delete", "/api/participants/P002/", None, {**DENY_ALL_BUT_ADMIN, "admin": 204}),
    "uploads.list": ("get", "/api/uploads/", None, {"anonymous": 401, "nobody": 403, "participant": 200, "annotator": 403, "reviewer": 200, "admin": 200}),
    "uploads.create": ("post", "/api/uploads/", upload_body, {"anonymous": 401, "nobody": 403, "participant": 201, "annotator": 403, "reviewer": 403, "admin": 201}),
    "images.list": ("get", "/api/images/", None, STAFF_READ),
    "images.detail.open": ("get", "/api/images/{open}/", None, STAFF_READ),
    "images.detail.taken": ("get", "/api/images/{taken}/", None, {**STAFF_READ, "annotator": 404}),
    "images.file": ("get", "/api/images/{open}/file/", None, STAFF_READ),
    "images.file.taken": ("get", "/api/images/{taken}/file/", None, {**STAFF_READ, "annotator": 404}),
    "images.thumbnail": ("get", "/api/images/{open}/thumbnail/", None, STAFF_READ),
    "annotation.get": ("get", "/api/images/{open}/annotation/", None, STAFF_READ),
    "annotation.get.taken": ("get", "/api/images/{taken}/annotation/", None, {**STAFF_READ, "annotator": 404}),
    "annotation.put.open": ("put", "/api/images/{open}/annotation/", {"version": 1, "geometry": COMPLETE},
                            {**STAFF_READ, "reviewer": 403}),
    "annotation.put.taken": ("put", "/api/images/{taken}/annotation/", {"version": 0, "geometry": COMPLETE},
                             {**STAFF_READ, "annotator": 404, "reviewer": 403}),
    "annotation.review": ("post", "/api/images/{open}/review/", {"decision": "accept"}, {**STAFF_READ, "annotator": 403}),
    "annotation.revisions": ("get", "/api/images/{open}/revisions/", None, STAFF_READ),
    "images.assign": ("post", "/api/images/{open}/assign/", {"assignee": "ann"}, {**DENY_ALL_BUT_ADMIN, "annotator": 403, "admin": 200}),
    "jobs.list": ("get", "/api/jobs/", None, STAFF_READ),
    "jobs.detail": ("get", "/api/jobs/{job}/", None, {**STAFF_READ, "annotator": 404, "reviewer": 404}),
    "jobs.create": ("post", "/api/jobs/", {"kind": "verify_media", "arguments": {}}, {**DENY_ALL_BUT_ADMIN, "admin": 202}),
    "jobs.cancel": ("post", "/api/jobs/{job}/cancel/", None, {**DENY_ALL_BUT_ADMIN, "admin": 202}),
    "training.presets": ("get", "/api/training-runs/presets/", None, {**STAFF_READ, "annotator": 403}),
    "schema": ("get", "/api/schema/", None, {role: 200 for role in ROLES}),
    "docs": ("get", "/api/docs/", None, {role: 200 for role in ROLES}),
}


@pytest.fixture
def world(users, participant, make_image, client_for):
    from labeling.models import Participant

    Participant.objects.create(code="P002")
    open_image, taken_image = make_image(), make_image()
    admin = client_for("admin")
    assert admin.put(f"/api/images/{open_image.pk}/annotation/", {"version": 0, "geometry": COMPLETE, "status": "submitted"},
                     format="json").status_code == 200
    Annotation.objects.filter(image=taken_image).update(assignee=users["annotator2"])
    job, _ = enqueue_job("test_count", {"n": 1}, user=users["admin"], send=False)
    return {"open": open_image.pk, "taken": taken_image.pk, "job": job.pk}


def client_as(role, client_for, participant):
    if role == "anonymous":
        return APIClient()
    if role == "participant":
        client = APIClient()
        client.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
        return client
    return client_for(role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_permission_matrix(endpoint, role, world, client_for, participant):
    method, url, body, expected = ENDPOINTS[endpoint]
    client = client_as(role, client_for, participant)
    body = body() if callable(body) else body
    response = getattr(client, method)(url.format(**world), body, format="multipart" if endpoint == "uploads.create" else "json")
    assert response.status_code == expected[role], getattr(response, "data", response)


def test_participant_token_uploads_only_to_its_own_participant(world, participant):
    from labeling.models import Participant, Upload

    other = Participant.objects.get(code="P002")
    client = APIClient()
    client.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
    body = upload_body()
    body["participant"] = "P002"  # ignored: the token decides
    response = client.post("/api/uploads/", body, format="multipart")
    assert response.status_code == 201 and response.json()["participant"] == "P001"
    assert not Upload.objects.filter(participant=other).exists()
    client.credentials(HTTP_X_UPLOAD_TOKEN=other.upload_token)
    assert client.get("/api/uploads/").json()["count"] == 0  # P002 does not see P001's uploads


def test_rotated_or_unknown_token_is_refused(participant):
    old = participant.upload_token
    participant.rotate_token()
    client = APIClient()
    client.credentials(HTTP_X_UPLOAD_TOKEN=old)
    response = client.post("/api/uploads/", upload_body(), format="multipart")
    assert response.status_code == 401 and "not valid" in response.json()["detail"]


def test_session_auth_requires_csrf(users, make_image):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    image = make_image()
    assert client.get(f"/api/images/{image.pk}/annotation/").status_code == 200
    response = client.put(f"/api/images/{image.pk}/annotation/", {"version": 0, "geometry": COMPLETE}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_token_auth_for_scripts(users):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "boss", "password": "boss-password-123"}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/images/").status_code == 200
    assert APIClient().post("/api/auth/token/", {"username": "boss", "password": "wrong"}, format="json").status_code == 400
