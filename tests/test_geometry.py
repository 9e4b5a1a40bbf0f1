"""Tests for dataset.geometry (plain pytest, no Django)."""
import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataset.geometry import (
    FINGER_NAMES, MAX_NAILS, MAX_VERTICES, GeometryIssue, GeometryReport, empty_geometry,
    nail_is_complete, normalize_geometry, validate_geometry,
)

W, H = 200, 100
SQUARE = [[10, 10], [50, 10], [50, 60], [10, 60]]
BOWTIE = [[0, 0], [10, 10], [10, 0], [0, 10]]


def nail(**overrides):
    base = {"id": "n1", "polygon": copy.deepcopy(SQUARE), "finger": 2, "base": [30, 55], "tip": [30, 15]}
    base.update(overrides)
    return base


def geo(*nails, ignore=None):
    out = {"nails": list(nails)}
    if ignore is not None:
        out["ignore"] = ignore
    return out


def rules(report, kind="errors"):
    return [issue.rule for issue in getattr(report, kind)]


def check(geometry, **kwargs):
    report = validate_geometry(geometry, W, H, **kwargs)
    json.dumps(report.to_dict())  # always serialisable
    return report


# ---------------------------------------------------------------- basics

def test_finger_names():
    assert FINGER_NAMES[1] == "left thumb" and FINGER_NAMES[5] == "left little"
    assert FINGER_NAMES[6] == "right thumb" and FINGER_NAMES[10] == "right little"
    assert sorted(FINGER_NAMES) == list(range(1, 11))


def test_valid_nail_passes():
    report = check(geo(nail()))
    assert report.ok and report.errors == [] and report.warnings == []
    assert check(geo(nail()), require_complete=True).ok
    assert report.to_dict() == {"errors": [], "warnings": []}


def test_minimal_nail_and_empty_geometry_pass():
    assert check(geo({"polygon": SQUARE})).ok
    assert check(empty_geometry()).ok
    assert check({"nails": [], "ignore": None}).ok
    assert empty_geometry() == {"nails": [], "ignore": []}


def test_issue_and_report_to_dict():
    issue = GeometryIssue("zero_area", "nail 1: x", nail=0, field="polygon")
    assert issue.to_dict() == {"rule": "zero_area", "message": "nail 1: x", "nail": 0,
                               "ignore": None, "field": "polygon"}
    report = GeometryReport(errors=[], warnings=[issue])
    assert report.ok and report.to_dict()["warnings"] == [issue.to_dict()]
    assert not GeometryReport(errors=[issue], warnings=[]).ok


def test_nail_is_complete():
    assert nail_is_complete(nail())
    assert not nail_is_complete(nail(finger=None))
    assert not nail_is_complete(nail(tip=None))
    assert not nail_is_complete({"polygon": SQUARE})


# ---------------------------------------------------------------- each rule, bad next to good

def test_too_few_vertices():
    assert check(geo(nail(polygon=[[10, 10], [50, 10], [50, 60]], base=[45, 50], tip=[45, 15]))).ok
    bad = check(geo(nail(polygon=[[10, 10], [50, 10], [50, 10], [10, 10]])))
    assert rules(bad) == ["too_few_vertices"]
    assert bad.errors[0].nail == 0 and bad.errors[0].message.startswith("nail 1: ")
    assert rules(check(geo(nail(polygon=[])))) == ["too_few_vertices"]


def test_self_intersecting():
    report = check(geo(nail(), {"polygon": BOWTIE}))
    assert rules(report) == ["self_intersecting"]
    issue = report.errors[0]
    assert issue.nail == 1 and issue.field == "polygon"
    assert issue.message == "nail 2: polygon crosses itself (self-intersection near (5.0, 5.0))"
    # a ring touching itself at a vertex is not simple either
    touching = [[0, 0], [10, 0], [10, 10], [5, 0], [0, 10]]
    assert rules(check(geo({"polygon": touching}))) == ["self_intersecting"]
    assert check(geo({"polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]})).ok


def test_zero_area():
    assert rules(check(geo({"polygon": [[0, 0], [5, 5], [10, 10]]}))) == ["zero_area"]
    assert rules(check(geo({"polygon": [[0, 0], [5, 0], [10, 0], [5, 0]]}))) == ["zero_area"]
    assert check(geo({"polygon": [[0, 0], [5, 1], [10, 0]]})).ok


def test_outside_image_with_tolerance():
    assert check(geo({"polygon": [[-1, -1], [W + 1, 0], [W + 1, H + 1]]})).ok
    report = check(geo({"polygon": [[-1.5, 0], [W, 0], [W, H]]}))
    assert rules(report) == ["outside_image"] and "(-1.5, 0.0)" in report.errors[0].message
    assert rules(check(geo({"polygon": [[0, 0], [W, 0], [W, H + 2]]}))) == ["outside_image"]
    assert check(geo({"polygon": [[-3, 0], [W, 0], [W, H]]}), tolerance=5).ok


def test_bad_finger():
    for good in (None, 1, 10):
        assert check(geo(nail(finger=good))).ok
    for bad in (0, 11, -1, True, False, 3.0, "3", [3]):
        report = check(geo(nail(finger=bad)))
        assert rules(report) == ["bad_finger"], bad
        assert report.errors[0].field == "finger"


def test_landmarks_incomplete():
    assert check(geo(nail(base=None, tip=None))).ok
    for field in ("base", "tip"):
        report = check(geo(nail(**{field: None})))
        assert rules(report) == ["landmarks_incomplete"]
        assert report.errors[0].field == field


def test_landmark_outside_nail():
    assert check(geo(nail(base=[52, 55]))).ok  # within 4 px of the edge
    assert check(geo(nail(base=[10, 60]))).ok  # on a vertex
    report = check(geo(nail(tip=[55, 15])))
    assert rules(report) == ["landmark_outside_nail"] and report.errors[0].field == "tip"
    assert check(geo(nail(tip=[55, 15])), landmark_tolerance=6).ok
    report = check(geo(nail(base=[150, 90])))
    assert rules(report) == ["landmark_outside_nail"] and report.errors[0].field == "base"


def test_landmarks_equal():
    assert check(geo(nail(base=[30, 30], tip=[30, 30.5]))).ok
    assert rules(check(geo(nail(base=[30, 30], tip=[30, 30])))) == ["landmarks_equal"]


def test_duplicate_finger_is_a_warning():
    other = nail(id="n2", polygon=[[100, 10], [140, 10], [140, 60], [100, 60]],
                 base=[120, 55], tip=[120, 15])
    assert check(geo(nail(), dict(other, finger=3))).warnings == []
    report = check(geo(nail(finger=7), {"polygon": SQUARE}, dict(other, finger=7)))
    assert report.ok
    assert rules(report, "warnings") == ["duplicate_finger"]
    warning = report.warnings[0]
    assert warning.nail == 2 and "nail 3" in warning.message and "nail 1" in warning.message
    assert "right index" in warning.message


def test_require_complete():
    bare = {"polygon": SQUARE}
    assert check(geo(bare)).ok
    assert sorted(rules(check(geo(bare), require_complete=True))) == ["finger_missing", "landmarks_missing"]
    assert rules(check(geo(nail(finger=None)), require_complete=True)) == ["finger_missing"]
    assert rules(check(geo(nail(base=None, tip=None)), require_complete=True)) == ["landmarks_missing"]
    assert check(geo(nail()), require_complete=True).ok


def test_ignore_regions():
    good = [[150, 10], [190, 10], [170, 50]]
    assert check(geo(nail(), ignore=[good])).ok
    cases = {
        "too_few_vertices": [[0, 0], [1, 1]],
        "self_intersecting": BOWTIE,
        "zero_area": [[0, 0], [1, 1], [2, 2]],
        "outside_image": [[0, 0], [500, 0], [0, 10]],
        "bad_point": [[0, 0], [1, "x"], [0, 10]],
        "not_finite": [[0, 0], [1, math.nan], [0, 10]],
        "polygon_not_a_list": "nope",
    }
    for rule, region in cases.items():
        report = check(geo(nail(), ignore=[good, region]))
        assert rules(report) == [rule], rule
        issue = report.errors[0]
        assert issue.ignore == 1 and issue.nail is None
        assert issue.message.startswith("ignore region 2: ")
    assert rules(check(geo(nail(), ignore="x"))) == ["ignore_not_a_list"]


def test_too_many_vertices_and_nails():
    angles = [2 * math.pi * k / (MAX_VERTICES + 1) for k in range(MAX_VERTICES + 1)]
    ring = [[100 + 40 * math.cos(a), 50 + 40 * math.sin(a)] for a in angles]
    assert rules(check(geo({"polygon": ring}))) == ["too_many_vertices"]
    assert rules(check(geo(ignore=[ring]))) == ["too_many_vertices"]
    assert check(geo({"polygon": ring[:MAX_VERTICES]})).ok
    assert rules(check(geo(*[{"polygon": SQUARE}] * (MAX_NAILS + 1)))) == ["too_many_nails"]
    assert check(geo(*[{"polygon": SQUARE}] * MAX_NAILS)).ok


def test_unknown_fields():
    report = check({"nails": [nail(colour="red")], "extra": 1})
    assert sorted(rules(report)) == ["unknown_field", "unknown_field"]
    assert {i.field for i in report.errors} == {"colour", "extra"}
    assert any("'colour'" in i.message and i.nail == 0 for i in report.errors)


def test_bad_and_non_finite_points():
    for point, rule in [([1], "bad_point"), ([1, 2, 3], "bad_point"), ("1,2", "bad_point"),
                        ([True, 2], "bad_point"), ([None, 2], "bad_point"), ({"x": 1}, "bad_point"),
                        ([math.nan, 2], "not_finite"), ([2, math.inf], "not_finite"),
                        ([10 ** 400, 2], "not_finite")]:
        report = check(geo(nail(polygon=[[10, 10], point, [50, 60]])))
        assert rules(report) == [rule], point
        assert "vertex 2" in report.errors[0].message
        report = check(geo(nail(base=point)))
        assert rules(report) == [rule] and report.errors[0].field == "base", point


def test_bad_id_and_missing_polygon():
    assert rules(check(geo(nail(id=5)))) == ["bad_id"]
    assert rules(check(geo(nail(id="x" * 101)))) == ["bad_id"]
    assert check(geo(nail(id=None))).ok
    assert rules(check(geo({"finger": 1}))) == ["missing_field"]


@pytest.mark.parametrize("value, rule", [
    (None, "not_an_object"), ("nails", "not_an_object"), ([], "not_an_object"), (3, "not_an_object"),
    ({}, "missing_field"), ({"nails": None}, "nails_not_a_list"), ({"nails": {"a": 1}}, "nails_not_a_list"),
    ({"nails": [None]}, "nail_not_an_object"), ({"nails": [[1, 2]]}, "nail_not_an_object"),
    ({"nails": [{"polygon": None}]}, "polygon_not_a_list"),
    ({"nails": [{"polygon": [[1, 2], [3]]}]}, "bad_point"),
    ({"nails": [{"polygon": [[[1, 2]], [3, 4], [5, 6]]}]}, "bad_point"),
    ({"nails": [{"polygon": SQUARE, "base": "here", "tip": [1, 2]}]}, "bad_point"),
])
def test_garbage_never_raises(value, rule):
    report = check(value)
    assert not report.ok and rule in rules(report)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=30,
)
nail_like = st.fixed_dictionaries({}, optional={
    "id": json_values, "polygon": st.lists(st.lists(st.floats() | st.integers(), max_size=3) | json_values,
                                           max_size=6),
    "finger": json_values, "base": json_values, "tip": json_values,
})


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"nails": st.lists(nail_like | json_values, max_size=4)},
                                                    optional={"ignore": json_values})),
       st.booleans())
def test_fuzz_never_raises(value, require_complete):
    report = validate_geometry(value, W, H, require_complete=require_complete)
    assert isinstance(report, GeometryReport)
    for issue in report.errors + report.warnings:
        assert isinstance(issue.rule, str) and issue.message
    if report.ok:  # whatever passes must normalise and re-validate
        normalized = normalize_geometry(value)
        assert validate_geometry(normalized, W, H, require_complete=require_complete).ok


# ---------------------------------------------------------------- normalisation

def test_normalize_drops_closing_vertex_and_rounds():
    raw = geo(
        {"id": "a", "polygon": [[10.004, 10], [50, 10], [50, 10.001], [50.126, 60], [10, 60], [10.001, 10]],
         "finger": 4, "base": [30.333, 55], "tip": [30, 15.557]},
        {"polygon": [[10, 10], [50, 10], [50, 60], [10, 10]]},
    )
    assert check(raw).ok
    assert normalize_geometry(raw) == {
        "nails": [
            {"id": "a", "polygon": [[10.0, 10.0], [50.0, 10.0], [50.13, 60.0], [10.0, 60.0]],
             "finger": 4, "base": [30.33, 55.0], "tip": [30.0, 15.56]},
            {"polygon": [[10.0, 10.0], [50.0, 10.0], [50.0, 60.0]], "finger": None, "base": None, "tip": None},
        ],
        "ignore": [],
    }
    normalized = normalize_geometry(raw)
    assert normalize_geometry(normalized) == normalized
    assert all(isinstance(c, float) for n in normalized["nails"] for p in n["polygon"] for c in p)


def test_normalize_ignore_and_negative_zero():
    raw = geo(ignore=[[[-0.001, 0], [10, 0], [10, 10], [-0.001, 0]]])
    assert check(raw).ok
    out = normalize_geometry(raw)
    assert out == {"nails": [], "ignore": [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]]}
    assert json.dumps(out).count("-") == 0


# ---------------------------------------------------------------- properties

@settings(max_examples=200, deadline=None)
@given(sides=st.integers(3, 40), radius=st.floats(3, 45), data=st.data(),
       rotation=st.floats(0, 2 * math.pi), finger=st.none() | st.integers(1, 10))
def test_regular_polygons_with_inner_landmarks_validate(sides, radius, data, rotation, finger):
    cx = data.draw(st.floats(radius, W - radius), label="cx")
    cy = data.draw(st.floats(radius, H - radius), label="cy")
    polygon = [[cx + radius * math.cos(rotation + 2 * math.pi * k / sides),
                cy + radius * math.sin(rotation + 2 * math.pi * k / sides)] for k in range(sides)]
    # landmarks: two distinct points on a random chord of the inscribed circle
    inner = radius * math.cos(math.pi / sides) * 0.9
    angle = data.draw(st.floats(0, 2 * math.pi), label="landmark angle")
    near, far = data.draw(st.floats(0.05, 1), label="near"), data.draw(st.floats(0.05, 1), label="far")
    base = [cx + inner * near * math.cos(angle), cy + inner * near * math.sin(angle)]
    tip = [cx - inner * far * math.cos(angle), cy - inner * far * math.sin(angle)]
    geometry = geo({"polygon": polygon, "finger": finger, "base": base, "tip": tip})
    report = check(geometry, require_complete=finger is not None)
    assert report.ok, report.to_dict()
    assert check(normalize_geometry(geometry)).ok


@given(perm=st.permutations(range(4)), dx=st.floats(0, 150), dy=st.floats(0, 50),
       scale=st.floats(1, 4))
def test_bowtie_permutations_are_self_intersecting(perm, dx, dy, scale):
    square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    ring = [square[i] for i in perm]
    # a ring over a square's corners is a bowtie iff it visits a diagonal as an edge
    is_bowtie = any({ring[k], ring[(k + 1) % 4]} in ({(0, 0), (10, 10)}, {(10, 0), (0, 10)}) for k in range(4))
    polygon = [[dx + scale * x, dy + scale * y] for x, y in ring]
    report = check(geo({"polygon": polygon}))
    assert rules(report) == (["self_intersecting"] if is_bowtie else [])


def test_bowtie_literal():
    assert rules(check(geo({"polygon": BOWTIE}))) == ["self_intersecting"]
