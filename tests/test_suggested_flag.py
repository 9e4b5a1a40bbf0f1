"""The "suggested" marks of a nail (dataset/geometry.py, issue #16): good and bad input side by side,
normalisation, and what reads labels as confirmed only."""
import math

import pytest

from dataset.geometry import (confirm_field, confirmed_labels, nail_is_complete, normalize_geometry,
                              validate_geometry)

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def nail(**extra):
    return {"polygon": SQUARE, "finger": 7, "base": [20, 29], "tip": [20, 11], **extra}


def rules(geometry, **kwargs):
    return [issue.rule for issue in validate_geometry(geometry, 100, 100, **kwargs).errors]


@pytest.mark.parametrize("good, bad, rule", [
    ({"finger": 0.8}, {"finger": 1.2}, "bad_confidence"),
    ({"finger": 0}, {"finger": -0.01}, "bad_confidence"),
    ({"landmarks": 1}, {"landmarks": math.nan}, "bad_confidence"),
    ({"landmarks": 0.5}, {"landmarks": True}, "bad_confidence"),
    ({"finger": 0.3}, {"finger": "0.3"}, "bad_confidence"),
    ({"finger": 0.3}, {"finger": 10 ** 400}, "bad_confidence"),
    ({"finger": 0.3, "landmarks": 0.2}, {"hand": 0.3}, "suggested_unknown_field"),
    ({}, ["finger"], "suggested_not_an_object"),
])
def test_marks_good_and_bad_side_by_side(good, bad, rule):
    assert rules({"nails": [nail(suggested=good)]}) == []
    assert rules({"nails": [nail(suggested=bad)]}) == [rule]


def test_a_marked_field_must_be_set():
    assert rules({"nails": [nail(finger=None, suggested={"landmarks": 0.4})]}) == []
    assert rules({"nails": [nail(finger=None, suggested={"finger": 0.4})]}) == ["suggested_unset"]
    assert rules({"nails": [nail(base=None, tip=None, suggested={"landmarks": 0.4})]}) == ["suggested_unset"]
    assert rules({"nails": [nail(base=None, tip=None, suggested={"finger": 0.4})]}) == []


def test_a_submission_needs_suggestions_confirmed():
    assert rules({"nails": [nail()]}, require_complete=True) == []
    assert rules({"nails": [nail(suggested={"finger": 0.9})]}, require_complete=True) == ["finger_unconfirmed"]
    assert sorted(rules({"nails": [nail(suggested={"landmarks": 0.9, "finger": 0.5})]}, require_complete=True)) == [
        "finger_unconfirmed", "landmarks_unconfirmed"]
    assert rules({"nails": [nail(suggested={"landmarks": 0.9})]}) == []  # a draft may hold suggestions


def test_normalisation_keeps_marks_and_drops_empty_ones():
    out = normalize_geometry({"nails": [nail(suggested={"landmarks": 0.123456, "finger": 1}), nail(suggested={}), nail()]})
    assert out["nails"][0]["suggested"] == {"finger": 1.0, "landmarks": 0.123}
    assert list(out["nails"][0]) == ["polygon", "finger", "base", "tip", "suggested"]
    assert "suggested" not in out["nails"][1] and "suggested" not in out["nails"][2]


def test_confirmed_labels_treat_suggested_fields_as_missing():
    assert confirmed_labels(nail()) == {"finger": 7, "base": [20, 29], "tip": [20, 11]}
    assert confirmed_labels(nail(suggested={"finger": 0.9})) == {"finger": None, "base": [20, 29], "tip": [20, 11]}
    assert confirmed_labels(nail(suggested={"landmarks": 0.9})) == {"finger": 7, "base": None, "tip": None}
    assert nail_is_complete(nail()) and not nail_is_complete(nail(suggested={"landmarks": 0.9}))


def test_confirming_a_field_removes_its_mark_only():
    both = nail(suggested={"finger": 0.9, "landmarks": 0.4})
    assert confirm_field(both, "finger")["suggested"] == {"landmarks": 0.4}
    assert "suggested" not in confirm_field(confirm_field(both, "finger"), "landmarks")
    assert both["suggested"] == {"finger": 0.9, "landmarks": 0.4}  # a copy: the input is unchanged
