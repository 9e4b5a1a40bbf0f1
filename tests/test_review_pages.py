"""The annotation and review pages (who may open what), the rasterizer overlay endpoint that shows
"what the model will learn" from unsaved labels, and the comparison of two revisions."""
import io
import json

import numpy as np
import pytest
from PIL import Image as PILImage

from dataset.raster import PALETTE, rasterize
from labeling.annotations import assign_annotation, save_annotation
from labeling.models import AnnotationRevision

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
OTHER = [[36, 8], [56, 8], [56, 40], [36, 40]]
GEOMETRY = {"nails": [{"polygon": SQUARE, "finger": 2, "base": [20, 28], "tip": [20, 12]},
                      {"polygon": OTHER, "finger": None, "base": None, "tip": None}],
            "ignore": [[[0, 40], [8, 40], [8, 47], [0, 47]]]}


@pytest.fixture
def image(make_image):
    return make_image(64, 48)


def png(response):
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "image/png"
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


def rasters(client, image, geometry=GEOMETRY, **extra):
    return client.post(f"/api/images/{image.pk}/rasters/", {"geometry": geometry, **extra}, format="json")


def test_foreground_overlay_is_the_rasterizer_mask(client_for, image):
    response = rasters(client_for("annotator"), image, kind="foreground")
    rgba = png(response)
    assert rgba.shape == (48, 64, 4)  # small images are not enlarged
    expected = rasterize(GEOMETRY, 64, 48)
    assert np.array_equal(rgba[..., 3] > 0, (expected.foreground > 0) | (expected.ignore > 0))
    assert np.array_equal(np.all(rgba == (255, 0, 190, 150), axis=-1), expected.foreground > 0)
    assert np.all(rgba[expected.ignore > 0] == (40, 40, 40, 150))
    info = json.loads(response["X-Raster-Info"])
    assert info["foreground_pixels"] == int(expected.foreground.sum()) and info["overlaps"] == []


def test_class_overlay_uses_the_palette_and_marks_unknown_fingers(client_for, image):
    rgba = png(rasters(client_for("annotator"), image, kind="classes"))
    assert tuple(rgba[20, 20, :3]) == tuple(PALETTE[2]) and rgba[20, 20, 3] == 175
    assert rgba[20, 45, 3] > 0 and tuple(rgba[20, 45, :3]) in {tuple(PALETTE[255]), (90, 90, 90)}  # no finger: grey, hatched
    assert rgba[2, 2, 3] == 0  # transparent where there is nothing


def test_field_overlay_colours_the_direction_and_greys_nails_without_landmarks(client_for, image):
    rgba = png(rasters(client_for("annotator"), image, kind="field", max_size=64))
    # base (20, 28) -> tip (20, 12): pointing up; colour wheel hue 270 degrees = blue-violet
    r, g, b, a = (int(v) for v in rgba[20, 20])  # between the drawn arrows
    assert a > 0 and b > 200 and g < 60
    assert tuple(rgba[30, 50]) == (128, 128, 128, 110)  # the nail without base/tip: no field there


def test_overlay_is_reduced_to_max_size_keeping_the_aspect(client_for, make_image):
    big = make_image(400, 300)
    rgba = png(rasters(client_for("annotator"), big, geometry={"nails": [{"polygon": [[10, 10], [300, 10], [300, 200]]}]}, max_size=100))
    assert rgba.shape[:2] == (75, 100)


def test_invalid_geometry_is_a_400_with_the_errors_and_nothing_is_saved(client_for, image):
    bad = {"nails": [{"polygon": [[0, 0], [10, 10], [10, 0], [0, 10]], "finger": None, "base": None, "tip": None}]}
    response = rasters(client_for("annotator"), image, geometry=bad)
    assert response.status_code == 400
    assert response.json()["errors"][0]["rule"] == "self_intersecting" and response.json()["errors"][0]["nail"] == 0
    assert rasters(client_for("annotator"), image, kind="nope").status_code == 400
    assert image.annotation.revisions.count() == 0


def test_overlay_permissions(client_for, users, image):
    assign_annotation(image, users["annotator2"])
    assert rasters(client_for("annotator"), image).status_code == 404  # not visible to ann
    assert rasters(client_for("annotator2"), image).status_code == 200
    assert rasters(client_for("reviewer"), image).status_code == 200
    assert rasters(client_for(None), image).status_code == 401


def test_png_accept_header_is_honoured(client_for, image):
    client = client_for("annotator")
    response = client.post(f"/api/images/{image.pk}/rasters/", {"geometry": GEOMETRY}, format="json", HTTP_ACCEPT="image/png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_compare_two_revisions(client_for, users, image):
    ann = users["annotator"]
    save_annotation(image, ann, geometry=GEOMETRY, version=0)
    moved = json.loads(json.dumps(GEOMETRY))
    moved["nails"][0]["polygon"] = [[12, 10], [32, 10], [32, 30], [12, 30]]
    moved["nails"][0]["finger"] = 3
    save_annotation(image, ann, geometry=moved, version=1)
    client = client_for("reviewer")
    body = client.get(f"/api/images/{image.pk}/compare/?a=1&b=2").json()
    assert 0.85 < body["foreground_iou"] < 1
    assert body["matches"][0]["a"] == 0 and body["matches"][0]["b"] == 0 and body["matches"][1]["iou"] == 1.0
    assert body["class_agreement"] == 0.0  # the only nail with a class changed it
    assert client.get(f"/api/images/{image.pk}/compare/?a=2").json()["foreground_iou"] == 1.0  # b: current
    assert client.get(f"/api/images/{image.pk}/compare/?a=0&b=2").json()["foreground_iou"] == 0.0
    assert client.get(f"/api/images/{image.pk}/compare/?a=9").status_code == 400
    assert client.get(f"/api/images/{image.pk}/compare/?a=x").status_code == 400


def test_model_revisions_can_be_compared(client_for, users, image):
    save_annotation(image, users["admin"], geometry=GEOMETRY, version=0, source=AnnotationRevision.Source.MODEL,
                    model_version="cascade-test")
    save_annotation(image, users["annotator"], geometry=GEOMETRY, version=1)
    body = client_for("reviewer").get(f"/api/images/{image.pk}/compare/?a=1").json()
    assert body["foreground_iou"] == 1.0 and body["b"] == 2


def test_annotation_page_access(client, users, image, make_image):
    client.force_login(users["annotator"])
    page = client.get(f"/annotate/{image.pk}/")
    assert page.status_code == 200
    assert b'id="annotate-config"' in page.content and b"labeling/annotate.js" in page.content
    other = make_image()
    assign_annotation(other, users["annotator2"])
    assert client.get(f"/annotate/{other.pk}/").status_code == 404  # someone else's image
    client.force_login(users["admin"])
    assert client.get(f"/annotate/{other.pk}/").status_code == 200
    client.force_login(users["reviewer"])
    assert client.get(f"/annotate/{image.pk}/").url == f"/review/{image.pk}/"


def test_review_pages_access(client, users, image):
    save_annotation(image, users["annotator"], geometry={"nails": [GEOMETRY["nails"][0]]}, version=0, status="submitted")
    client.force_login(users["reviewer"])
    listing = client.get("/review/")
    assert listing.status_code == 200 and f"/review/{image.pk}/".encode() in listing.content
    assert client.get("/review/next/").url == f"/review/{image.pk}/"
    assert client.get(f"/review/next/?after={image.pk}").url == f"/review/{image.pk}/"  # wraps around
    page = client.get(f"/review/{image.pk}/")
    assert page.status_code == 200 and b"labeling/review.js" in page.content
    client.force_login(users["annotator"])
    assert client.get(f"/review/{image.pk}/").status_code == 403
    assert client.get("/review/").status_code == 403


def test_static_modules_are_served_as_javascript(client, users):
    client.force_login(users["annotator"])
    for name in ("annotate.js", "review.js", "geometry.js", "render.js", "tools.js", "annotate.css"):
        response = client.get(f"/static/labeling/{name}")
        assert response.status_code == 200, name
        expected = "text/css" if name.endswith(".css") else "text/javascript"
        assert response["Content-Type"].startswith(expected), (name, response["Content-Type"])


def test_home_links_to_the_work_pages(client, users):
    client.force_login(users["annotator"])
    assert b'href="/annotate/"' in client.get("/").content
    client.force_login(users["reviewer"])
    assert b'href="/review/"' in client.get("/").content


ROLES = ["anonymous", "nobody", "participant", "annotator", "reviewer", "admin"]
NEW_ENDPOINTS = {  # method, url, body, {role: status}
    "rasters.open": ("post", "/api/images/{open}/rasters/", {"geometry": GEOMETRY},
                     {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 200, "reviewer": 200, "admin": 200}),
    "rasters.taken": ("post", "/api/images/{taken}/rasters/", {"geometry": GEOMETRY},
                      {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 404, "reviewer": 200, "admin": 200}),
    "compare.open": ("get", "/api/images/{open}/compare/?a=0", None,
                     {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 200, "reviewer": 200, "admin": 200}),
    "compare.taken": ("get", "/api/images/{taken}/compare/?a=0", None,
                      {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 404, "reviewer": 200, "admin": 200}),
    "queue": ("get", "/api/queue/", None,
              {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 200, "reviewer": 403, "admin": 200}),
    "queue.next": ("post", "/api/queue/next/", None,
                   {"anonymous": 401, "nobody": 403, "participant": 403, "annotator": 200, "reviewer": 403, "admin": 200}),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(NEW_ENDPOINTS))
def test_permission_matrix_of_the_tool_endpoints(endpoint, role, users, participant, make_image, client_for):
    from rest_framework.test import APIClient

    open_image, taken_image = make_image(), make_image()
    assign_annotation(taken_image, users["annotator2"])
    if role == "anonymous":
        client = APIClient()
    elif role == "participant":
        client = APIClient()
        client.credentials(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
    else:
        client = client_for(role)
    method, url, body, expected = NEW_ENDPOINTS[endpoint]
    response = getattr(client, method)(url.format(open=open_image.pk, taken=taken_image.pk), body, format="json")
    assert response.status_code == expected[role], getattr(response, "data", response)
