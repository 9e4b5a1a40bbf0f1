"""Malformed JSON of any depth or size answers 400 (413 when too large), never 500, with or without an account."""
import json

import pytest

from annotation_site.json_parsing import MalformedJSON, json_depth_exceeds, parse_json

DEEP = 50_000
SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture
def image(make_image):
    return make_image(64, 48)


@pytest.mark.parametrize("body", [nested_list(DEEP), nested_object(DEEP)], ids=["lists", "objects"])
def test_deep_json_on_the_token_endpoint_is_400_anonymously(client, users, body):
    response = client.post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["detail"]


def test_token_endpoint_still_reads_good_json(client, users):
    body = json.dumps({"username": "boss", "password": "boss-password-123"})
    assert client.post("/api/auth/token/", body, content_type="application/json").status_code == 200


def annotation_put(client, image, body: str):
    return client.put(f"/api/images/{image.pk}/annotation/", body, content_type="application/json")


def test_deep_json_on_an_annotation_put_is_400(client_for, image):
    client = client_for("annotator")
    response = annotation_put(client, image, nested_list(DEEP))
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]
    # Deep inside a plausible body, and shallow enough for Python's parser but past the limit: both refused.
    geometry = '{"nails": [{"polygon": ' + nested_list(DEEP) + "}]}"
    assert annotation_put(client, image, '{"version": 0, "geometry": ' + geometry + "}").status_code == 400
    response = annotation_put(client, image, json.dumps({"version": 0, "geometry": {"nails": [], "ignore": []},
                                                        "extra": json.loads(nested_list(100))}))
    assert response.status_code == 400 and "64 levels" in response.json()["detail"]
    good = {"version": 0, "geometry": {"nails": [{"polygon": SQUARE, "finger": None, "base": None, "tip": None}],
                                       "ignore": []}, "status": "draft"}
    response = annotation_put(client, image, json.dumps(good))
    assert response.status_code == 200 and response.json()["version"] == 1


@pytest.mark.parametrize("body, reason", [
    ('{"version": 0, "geometry": ', "JSON parse error"),
    ('{"version": NaN}', "NaN is not valid JSON"),
    (b'{"version": "\xff\xfe"}', "not utf-8"),
], ids=["truncated", "nan", "not-utf8"])
def test_other_malformed_json_is_400_naming_the_problem(client_for, image, body, reason):
    response = annotation_put(client_for("annotator"), image, body)
    assert response.status_code == 400 and reason in response.json()["detail"]


def test_too_large_body_is_413_before_parsing(client_for, image, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    client = client_for("annotator")
    padding = "x" * 20_000
    response = annotation_put(client, image, json.dumps({"version": 0, "geometry": {"nails": [], "ignore": []},
                                                        "padding": padding}))
    assert response.status_code == 413 and "larger than 10000 bytes" in response.json()["detail"]
    assert annotation_put(client, image, json.dumps({"version": 0, "geometry": {"nails": [], "ignore": []},
                                                    "padding": padding[:5000]})).status_code == 200


def test_too_large_anonymous_body_is_413(client, db):
    body = json.dumps({"username": "x", "password": "y" * (6 * 1024 * 1024)})  # over the 5 MB default
    assert client.post("/api/auth/token/", body, content_type="application/json").status_code == 413


def test_explicit_json_parser_views_use_the_same_parser(client_for):
    """The try-on render view lists its parsers itself: deep JSON is a 400 there too."""
    response = client_for("annotator").post("/api/tryon/render", nested_list(DEEP), content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]


def test_parse_json_limits_depth_without_recursion():
    assert parse_json(nested_list(64)) == json.loads(nested_list(64))
    with pytest.raises(MalformedJSON, match="nested deeper than 64 levels"):
        parse_json(nested_list(65))
    with pytest.raises(MalformedJSON, match="nested deeper than 64 levels"):
        parse_json(nested_object(DEEP))
    with pytest.raises(MalformedJSON, match="Infinity is not valid JSON"):
        parse_json("[Infinity]")
    assert parse_json("[Infinity]", strict=False) == [float("inf")]
    assert json_depth_exceeds({"a": [1, {"b": []}]}, 2) and not json_depth_exceeds({"a": [1, {"b": []}]}, 4)
