"""A trained model's vote on each labelled nail's finger and direction, for the label suggestions (issue #16).

Plain Python + NumPy + OpenCV; never imports Django or an app. When a model's class and direction heads
were trained on complete labels (``ml.predict.heads_trained``), its per-pixel outputs over a nail's
polygon say which finger the nail is and which way it points; :func:`ml.label_suggestions.suggest_labels`
takes these as ``model_votes`` and weighs them with the geometry and the photo.

    from ml.nail_votes import predict_nail_votes
    votes = predict_nail_votes(predictor, image_rgb, polygons)    # one dict (or None) per polygon

Per nail (its polygon rasterized on the outputs' grid; the nail probability weighs each pixel):

- ``finger_probs``: the class head's probabilities averaged over the nail (10 floats, finger 1..10);
- ``direction``: the direction field averaged over the nail, in the photo's coordinates (unit);
- ``direction_confidence``: how much the field agrees with itself over the nail, ``|mean| / mean |v|``
  (1: every pixel points the same way; near 0: no agreement, e.g. half the nail each way).

A head the model never trained is None in the prediction, and so is its part of the vote; a nail too small
to cover a pixel of the grid is read at its centroid. :func:`predict_nail_votes` runs the network once at its own
input size (the photo shrunk, not the outputs of a 12 MP photo upsampled: 10 class maps of a 12 MP photo
are ~0.5 GB) and reads the votes there.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["nail_votes", "predict_nail_votes", "shrunk_prediction"]


def _nail_mask(polygon, scale: tuple[float, float], shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
    """(the box's slices, the nail's mask in it) of one polygon (photo px) on an output grid of ``shape``
    whose pixels are ``scale`` = (sx, sy) grid px per photo px."""
    pts = np.asarray(polygon, np.float64) * np.asarray(scale, np.float64)
    h, w = shape
    x0, y0 = np.clip(np.floor(pts.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(pts.max(axis=0)).astype(int) + 1, [x0 + 1, y0 + 1], [w, h])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(pts - 0.5 - [x0, y0]).astype(np.int32)], 1)
    if not mask.any():  # smaller than a grid pixel: its centroid's pixel
        cx, cy = np.clip(np.floor(pts.mean(axis=0)).astype(int), [x0, y0], [x1 - 1, y1 - 1])
        mask[cy - y0, cx - x0] = 1
    return (slice(y0, y1), slice(x0, x1)), mask.astype(bool)


def nail_votes(polygons: Sequence, class_prob: np.ndarray | None, field: np.ndarray | None,
               fg_prob: np.ndarray | None = None, scale: tuple[float, float] = (1.0, 1.0)) -> list[dict | None]:
    """The vote of each polygon (photo px) from a model's outputs on a grid of ``scale`` = (sx, sy) grid px
    per photo px: ``class_prob`` H x W x 10, ``field`` H x W x 2 (x right, y down), ``fg_prob`` H x W (the
    pixels' weights; None: equal). None for every nail when neither head is given."""
    if class_prob is None and field is None:
        return [None] * len(polygons)
    grid = (class_prob if class_prob is not None else field).shape[:2]
    sx, sy = float(scale[0]), float(scale[1])
    out: list[dict | None] = []
    for polygon in polygons:
        box, mask = _nail_mask(polygon, (sx, sy), grid)
        weights = fg_prob[box][mask].astype(np.float64) if fg_prob is not None else np.ones(int(mask.sum()))
        weights = weights + 1e-3  # a nail the model missed still reads its heads, evenly
        vote: dict = {}
        if class_prob is not None:
            probs = (class_prob[box][mask].astype(np.float64) * weights[:, None]).sum(axis=0) / weights.sum()
            vote["finger_probs"] = [round(float(p), 4) for p in probs]
        if field is not None:
            vectors = field[box][mask].astype(np.float64)
            mean = (vectors * weights[:, None]).sum(axis=0) / weights.sum()
            spread = float((np.hypot(vectors[:, 0], vectors[:, 1]) * weights).sum() / weights.sum())
            # Back to the photo's axes (the grid may be scaled differently along x and y).
            direction = np.array([mean[0] / sx, mean[1] / sy])
            norm = float(np.hypot(*direction))
            if norm > 0 and spread > 0:
                vote["direction"] = [round(float(v), 4) for v in direction / norm]
                vote["direction_confidence"] = round(min(float(np.hypot(*mean)) / spread, 1.0), 4)
        out.append(vote or None)
    return out


def shrunk_prediction(predictor, image: np.ndarray):
    """``(prediction, (sx, sy))``: ``predictor`` (an ``ml.predict.Predictor``) run on the photo (uint8 H x W x 3
    RGB) resized to the network's input size, its outputs at that size, and their px per photo px. The photo
    is resized as the predictor resizes a photo itself (``ml.data.resize_for_eval``), so the network sees the
    same input as ``predictor(image)``: only the outputs stay small (``ml.predict.foreground_at`` brings the
    nail probability to the photo's size)."""
    from ml.data import resize_for_eval  # ml.data imports torch: a predictor has it loaded already

    image = np.asarray(image)
    height, width = image.shape[:2]
    small = resize_for_eval(image, predictor.size)
    in_h, in_w = small.shape[:2]
    return predictor(np.ascontiguousarray(small)), (in_w / width, in_h / height)


def predict_nail_votes(predictor, image: np.ndarray, polygons: Sequence) -> list[dict | None]:
    """Each polygon's vote (:func:`nail_votes`) from ``predictor`` run once on the photo at the network's
    input size (:func:`shrunk_prediction`)."""
    if not len(polygons):
        return []
    prediction, scale = shrunk_prediction(predictor, image)
    return nail_votes(polygons, prediction.class_prob, prediction.field, prediction.fg_prob, scale=scale)
