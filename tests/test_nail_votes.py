"""ml.nail_votes: a model's per-nail votes on finger and direction (issue #16)."""
from __future__ import annotations

import numpy as np
import pytest

from ml.label_suggestions import suggest_labels
from ml.nail_votes import nail_votes, predict_nail_votes
from ml.predict import Predictor


def square(x0, y0, side):
    return [[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]


def outputs(shape=(40, 60)):
    class_prob = np.full(shape + (10,), 0.02, np.float32)
    class_prob[..., 0] = 0.82  # finger 1 everywhere ...
    field = np.zeros(shape + (2,), np.float32)
    field[..., 0] = 1.0        # ... pointing right
    return class_prob, field


def test_votes_average_the_heads_over_each_nail():
    class_prob, field = outputs()
    class_prob[8:23, 28:43] = 0.02
    class_prob[8:23, 28:43, 6] = 0.82    # finger 7 around the second nail
    field[8:23, 28:43] = (0.0, -1.0)     # pointing up
    votes = nail_votes([square(5, 5, 10), square(30, 10, 10)], class_prob, field)
    assert int(np.argmax(votes[0]["finger_probs"])) + 1 == 1
    assert int(np.argmax(votes[1]["finger_probs"])) + 1 == 7
    assert sum(votes[1]["finger_probs"]) == pytest.approx(1.0, abs=1e-3)
    assert votes[0]["direction"] == pytest.approx([1.0, 0.0])
    assert votes[1]["direction"] == pytest.approx([0.0, -1.0])
    assert votes[0]["direction_confidence"] == pytest.approx(1.0)


def test_a_field_that_disagrees_with_itself_gives_a_low_confidence():
    class_prob, field = outputs()
    field[:, :20] = (-1.0, 0.0)  # the nail's left half points left, its right half right
    vote = nail_votes([square(10, 10, 20)], class_prob, field)[0]
    assert vote["direction_confidence"] < 0.2
    coherent = nail_votes([square(30, 10, 20)], class_prob, field)[0]
    assert coherent["direction_confidence"] > 0.95


def test_the_grid_scale_maps_polygons_and_directions_back_to_the_photo():
    class_prob, field = outputs((40, 60))
    field[...] = (1.0, 1.0)  # 45 degrees on a grid shrunk 4x across and 2x down ...
    class_prob[5:10, 10:15] = 0.02
    class_prob[5:10, 10:15, 4] = 0.82
    # ... a nail at x 40..60, y 10..20 of the photo sits at 10..15, 5..10 of the grid.
    vote = nail_votes([square(40, 10, 10) + [[60, 20]]], class_prob, field, scale=(0.25, 0.5))[0]
    assert int(np.argmax(vote["finger_probs"])) + 1 == 5
    # One grid px is 4 photo px across and 2 down: (1, 1) on the grid is (4, 2) in the photo.
    assert vote["direction"][1] / vote["direction"][0] == pytest.approx(0.5, rel=1e-3)


def test_a_nail_smaller_than_a_grid_pixel_reads_its_centroid_and_missing_heads_give_no_vote():
    class_prob, field = outputs()
    class_prob[3, 7] = 0.02
    class_prob[3, 7, 9] = 0.82
    vote = nail_votes([square(7.1, 3.1, 0.3)], class_prob, None)[0]
    assert int(np.argmax(vote["finger_probs"])) + 1 == 10 and "direction" not in vote
    assert nail_votes([square(1, 1, 5)], None, None) == [None]
    assert predict_nail_votes(None, np.zeros((8, 8, 3), np.uint8), []) == []


def test_the_nail_probability_weighs_the_pixels():
    class_prob, field = outputs()
    class_prob[:, 10:] = 0.02
    class_prob[:, 10:, 2] = 0.82   # the right part of the polygon says finger 3 ...
    fg = np.zeros((40, 60), np.float32)
    fg[:, 10:] = 1.0               # ... and only it is nail
    vote = nail_votes([square(0, 0, 14)], class_prob, field, fg_prob=fg)[0]
    assert int(np.argmax(vote["finger_probs"])) + 1 == 3
    even = nail_votes([square(0, 0, 14)], class_prob, field)[0]
    assert int(np.argmax(even["finger_probs"])) + 1 == 1


def test_model_votes_run_a_real_network_once_at_its_input_size_and_feed_the_suggester():
    from tests.export_support import tiny_model

    model, meta = tiny_model(val_size=64)
    predictor = Predictor(model, meta)
    seen = []
    original = predictor.__call__

    class Spy:
        size = predictor.size
        heads = predictor.heads

        def __call__(self, image, size=None):
            seen.append(image.shape)
            return original(image, size)

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (200, 400, 3), dtype=np.uint8)
    polygons = [square(50, 50, 40), square(200, 100, 30)]
    votes = predict_nail_votes(Spy(), photo, polygons)
    assert seen == [(32, 64, 3)]  # 200 x 400 shrunk to the network's 64 (multiples of 32)
    assert len(votes) == 2 and all(len(v["finger_probs"]) == 10 and len(v["direction"]) == 2 for v in votes)
    suggestions = suggest_labels(polygons, photo, model_votes=votes)
    assert all("model votes" in s.reasons for s in suggestions)
