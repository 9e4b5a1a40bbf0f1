"""The finger's axis around a nail, read from the photo (issue #16), for :mod:`ml.label_suggestions`.

Plain Python + NumPy + OpenCV; never imports Django or an app. A nail about as wide as long says little
about its finger's direction, but the finger does: skin of the nail's surroundings' colour runs on from the
nail along the finger (on the base side at least; beyond the tip too when the finger is curled over the
palm) and stops within about a nail width across it. :func:`skin_axis` walks outward from the nail's edge
in 36 directions until the colour leaves the skin's for two steps (the median Lab colour of a ring around the
nail, its skin-like colours only when it also holds background), and
returns the axis (sign-free) along which the skin runs furthest (the middle of the longest runs), with how clearly it does (the longest run
minus the median run, in nail sizes): a finger held out against a background reads clearly, a nail on a
palm or on skin-coloured ground does not. The axis is sign-free on purpose: which end is the tip depends on
the pose (a curled finger has skin beyond both ends), so it is read elsewhere.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["skin_axis", "skin_lab"]

STEPS = 36           # directions walked (every 10 degrees)
REACH = 3.0          # the longest walk, in nail sizes (mean of length and width)
STEP = 0.1           # the walk's step, in nail sizes
CHROMA_TOLERANCE = 12.0     # Lab a/b distance from the skin colour that ends a run
LIGHTNESS_TOLERANCE = 30.0  # L* distance that ends a run (light changes along a finger)
PLATEAU = 0.3        # runs this close to the longest count as the longest
SKIN_MIN_AB = 3.0            # skin-like colours (CIE Lab): a* and b* above this ...
SKIN_HUE = (15.0, 85.0)      # ... and the hue angle atan2(b*, a*) between these (degrees)
SKIN_MIN_SHARE = 0.2         # the ring's skin-like colours alone make the skin's when at least this share


def skin_lab(image: np.ndarray) -> np.ndarray:
    """The photo (uint8 RGB) slightly blurred, in CIE Lab (float, as OpenCV gives it): what :func:`skin_axis`
    reads."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    blurred = cv2.GaussianBlur(np.ascontiguousarray(image[..., :3]), (5, 5), 0)
    return cv2.cvtColor(blurred.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _skin_colour(lab: np.ndarray, pts: np.ndarray, width: float):
    """The skin's colour: the median Lab colour of a ring around the nail, of its skin-like colours only
    (``SKIN_MIN_AB``, ``SKIN_HUE``) when enough of the ring is skin-like (a nail at the hand's edge has background in its
    ring: a dark table, denim); None when unreadable."""
    height, width_px = lab.shape[:2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    pad = max(3, int(width * 0.6))
    bx0, by0 = max(0, x0 - pad), max(0, y0 - pad)
    bx1, by1 = min(width_px, x1 + pad + 1), min(height, y1 + pad + 1)
    if bx1 - bx0 < 3 or by1 - by0 < 3:
        return None
    mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
    cv2.fillPoly(mask, [np.round(pts - [bx0, by0]).astype(np.int32)], 1)
    k = max(3, int(width * 0.6)) | 1
    ring = cv2.dilate(mask, np.ones((k, k), np.uint8)) & (1 - mask)
    if not ring.any():
        return None
    colours = lab[by0:by1, bx0:bx1][ring > 0]
    a, b = colours[:, 1], colours[:, 2]
    hue = np.degrees(np.arctan2(b, a))
    skin_like = (a > SKIN_MIN_AB) & (b > SKIN_MIN_AB) & (hue > SKIN_HUE[0]) & (hue < SKIN_HUE[1])
    if skin_like.mean() >= SKIN_MIN_SHARE:  # background in the ring (a nail at the hand's edge): skin only
        colours = colours[skin_like]
    return np.median(colours, axis=0)


def _run(lab: np.ndarray, skin: np.ndarray, pts: np.ndarray, centre: np.ndarray, u: np.ndarray, size: float,
         reach: float) -> float:
    """How far (nail sizes) skin of colour ``skin`` runs on from the nail's edge along ``u`` (at most
    ``reach``; to the photo's border when it gets there first)."""
    height, width_px = lab.shape[:2]
    end = centre + u * float(((pts - centre) @ u).max())
    missed = 0
    for s in np.arange(STEP, reach, STEP):
        x, y = np.round(end + u * s * size).astype(int)
        if not (0 <= x < width_px and 0 <= y < height):
            return float(s)
        colour = lab[y, x]
        if (math.hypot(colour[1] - skin[1], colour[2] - skin[2]) > CHROMA_TOLERANCE
                or abs(colour[0] - skin[0]) > LIGHTNESS_TOLERANCE):
            missed += 1
            if missed == 2:  # two steps off the skin in a row (one is the nail's edge or a speck)
                return float(s - STEP)
        else:
            missed = 0
    return float(reach)


def skin_axis(lab: np.ndarray, polygon, centre, width: float, length: float) -> tuple[np.ndarray, float]:
    """(unit axis, clarity): the axis along which skin runs furthest from the nail (sign-free), and the
    smoothed longest run minus the median run over all directions (nail sizes; 0 when unreadable)."""
    pts = np.asarray(polygon, np.float64)
    centre = np.asarray(centre, np.float64)
    skin = _skin_colour(lab, pts, width)
    if skin is None:
        return np.array([1.0, 0.0]), 0.0
    size = 0.5 * (width + length)
    runs = np.array([_run(lab, skin, pts, centre, np.array([math.cos(a), math.sin(a)]), size, REACH)
                     for a in 2 * math.pi * np.arange(STEPS) / STEPS])
    smooth = np.convolve(np.r_[runs[-1:], runs, runs[:1]], [0.25, 0.5, 0.25], "valid")
    top = float(smooth.max())
    # The middle of the longest runs (a plateau when the finger is wide): their mean by doubled angles.
    weights = np.clip(smooth - (top - PLATEAU), 0.0, None)
    doubled = 4 * math.pi * np.arange(STEPS) / STEPS
    a = math.atan2(float(weights @ np.sin(doubled)), float(weights @ np.cos(doubled))) / 2
    return np.array([math.cos(a), math.sin(a)]), top - float(np.median(smooth))
