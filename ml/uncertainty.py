"""How unsure a model is about one image: mean binary entropy of the nail probability in a band around
the predicted nail edges. Plain NumPy + OpenCV; never imports Django (nor torch).

    from ml.uncertainty import edge_entropy
    score = edge_entropy(prediction.fg_prob)       # 0 (sure) .. 1 (a coin flip on every edge pixel)

Why the edges: inside a well-predicted nail and in the background far from any nail the probability is
close to 0 or 1 on almost every image, so a mean over the whole image is dominated by the image size and
the number of nails. What differs between an easy and a hard image is how sharp the predicted outlines
are, and whether there are regions the model half believes are nail. So the band is:

* every pixel within ``band`` of a predicted edge (where ``fg_prob > threshold`` changes), and
* every "ambiguous" pixel, whose probability lies within ``ambiguous`` of the threshold (a faint blob
  that stays under the threshold has no edge but is exactly what a human should look at).

``band`` defaults to 2 % of the longer side of the (reduced) map, at least 2 px. The map is first
reduced so that its longer side is at most ``max_side`` (area averaging), which makes the score
independent of the photo's resolution and cheap (about 1 ms at 256 px). An image whose band is empty
(no nail predicted, no ambiguous pixel) gets the mean entropy over the whole map, which is tiny.

Entropy is in bits: ``H(p) = -p log2 p - (1 - p) log2 (1 - p)``, so 1.0 at p = 0.5.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["binary_entropy", "edge_band", "edge_entropy"]


def binary_entropy(prob: np.ndarray) -> np.ndarray:
    """Per-pixel entropy in bits of a Bernoulli probability map (float32, same shape)."""
    p = np.clip(np.asarray(prob, np.float32), 1e-6, 1 - 1e-6)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def _reduce(prob: np.ndarray, max_side: int | None) -> np.ndarray:
    prob = np.asarray(prob, np.float32)
    if prob.ndim != 2:
        raise ValueError(f"fg_prob must be H x W, got {prob.shape}")
    h, w = prob.shape
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        prob = cv2.resize(prob, size, interpolation=cv2.INTER_AREA)
    return prob


def edge_band(prob: np.ndarray, threshold: float = 0.5, band: int | None = None, ambiguous: float = 0.25) -> np.ndarray:
    """Bool mask of the pixels the score averages over (see the module docstring); ``prob`` as given."""
    h, w = prob.shape
    radius = int(band) if band is not None else max(2, round(0.02 * max(h, w)))
    fg = (prob > threshold).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    edges = cv2.morphologyEx(fg, cv2.MORPH_GRADIENT, kernel) > 0
    if radius > 0 and edges.any():
        grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        edges = cv2.dilate(edges.astype(np.uint8), grow) > 0
    return edges | (np.abs(prob - threshold) < ambiguous)


def edge_entropy(fg_prob: np.ndarray, *, threshold: float = 0.5, band: int | None = None, ambiguous: float = 0.25,
                 max_side: int | None = 256) -> float:
    """Mean entropy (bits, 0..1) of the nail probability in the band around predicted edges."""
    prob = _reduce(fg_prob, max_side)
    if prob.size == 0:
        return 0.0
    entropy = binary_entropy(prob)
    mask = edge_band(prob, threshold, band, ambiguous)
    values = entropy[mask] if mask.any() else entropy
    return float(values.mean())
