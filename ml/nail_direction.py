"""Which end of a nail's axis is its tip: a small logistic regression on per-nail image + shape features.

Plain Python + NumPy + OpenCV (issue #16); never imports Django or an app. Used by
:mod:`ml.label_suggestions` as each nail's vote on its direction; refit from confirmed labels with
``bench/fit_label_suggestions.py`` (tuning participants only).

Every feature is antisymmetric: it is computed for the axis ``u`` and flips its sign for ``-u``, so the
model needs no intercept and ``P(tip at the +u end) = sigmoid(w . x)`` (and ``1 - that`` for ``-u``).
Only cues that hold in every pose are used: the free edge (beyond the nail bed) is lighter and less
saturated than the nail at the cuticle, whether the finger is extended (back of the hand) or curled
toward the camera (palm side, the tip pointing back toward the palm):

- ``light``: the nail's mean lightness (CIE L*) in the +u third minus the -u third;
- ``light_end``: the median lightness of the outer fifth at +u minus that at -u;
- ``chroma``: the median chroma (saturation) of the outer fifth at +u minus that at -u.

Cues that depend on the pose were measured and left out (leave-one-participant-out on the tuning
participants, per-nail vote accuracy): the photo strips beyond each end (``orient_from_image``), the
photo's border beyond each end, the way to the hand's centre and the finger's skin beyond each end each
point the right way for one pose and the wrong way for the other, and adding them lowered the accuracy
(0.73 with the three cues above, 0.60 with them added); the nail's width at each end did not help.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["FEATURES", "TIP_WEIGHTS", "direction_features", "fit_logistic", "tip_probability"]

FEATURES = ("light", "light_end", "chroma")
# Fit by bench/fit_label_suggestions.py (L2-regularised logistic regression, no intercept) on the confirmed
# labels of the tuning participants only (every participant bench/complete_labels.py does not hold out;
# l2 = 10, 184 nails of 20 participants; leave-one-participant-out per-nail accuracy 0.72).
TIP_WEIGHTS = np.array([0.526, 0.584, -0.602])


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def tip_probability(features: np.ndarray, weights: np.ndarray | None = None) -> float:
    """P(the tip is at the +u end) of one nail's feature vector."""
    w = TIP_WEIGHTS if weights is None else np.asarray(weights, np.float64)
    return float(_sigmoid(float(np.asarray(features, np.float64) @ w)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50) -> np.ndarray:
    """Weights of an L2-regularised logistic regression without intercept (Newton's method); ``y`` in {0, 1}."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def direction_features(polygon, centre, u, image: np.ndarray | None, lab: np.ndarray | None = None) -> np.ndarray:
    """The feature vector (``FEATURES``) of one nail for the axis ``u`` (all zero without a photo); ``lab``:
    the photo in CIE Lab (float, as OpenCV gives it), computed here when not given."""
    x = np.zeros(len(FEATURES))
    if image is None:
        return x
    pts = np.asarray(polygon, np.float64)
    centre, u = np.asarray(centre, np.float64), np.asarray(u, np.float64)
    u = u / np.linalg.norm(u)
    t = (pts - centre) @ u
    t_lo, t_hi = float(t.min()), float(t.max())
    length = max(t_hi - t_lo, 1e-3)
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    height, width = image.shape[:2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1 + 1), min(height, y1 + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return x
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(pts - 0.5 - [x0, y0]).astype(np.int32)], 1)
    ys, xs = np.nonzero(mask)
    if len(xs) < 6:
        return x
    lab = _lab(image) if lab is None else lab
    qt = (xs + 0.5 + x0 - centre[0]) * u[0] + (ys + 0.5 + y0 - centre[1]) * u[1]
    colour = lab[ys + y0, xs + x0]
    lightness, chroma = colour[:, 0], np.hypot(colour[:, 1], colour[:, 2])
    ahead, behind = qt > t_hi - length / 3, qt < t_lo + length / 3
    if ahead.any() and behind.any():
        x[0] = float(lightness[ahead].mean() - lightness[behind].mean()) / 20.0
    ahead, behind = qt > t_hi - length / 5, qt < t_lo + length / 5
    if ahead.any() and behind.any():
        x[1] = float(np.median(lightness[ahead]) - np.median(lightness[behind])) / 20.0
        x[2] = float(np.median(chroma[ahead]) - np.median(chroma[behind])) / 20.0
    return x
