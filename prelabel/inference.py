"""Pre-labeling's pictures: the probability map as a grey PNG (kept with the
prediction) and as a transparent overlay for the review pages. The model itself is served by
training/serving.py (``predictor_for``, ``predict_picture``).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

OVERLAY_MAX_SIDE = 512


def probability_png(fg_prob: np.ndarray, max_side: int = OVERLAY_MAX_SIDE) -> tuple[bytes, int, int]:
    """The probability map as an 8-bit grey PNG (255 = certainly nail), longer side at most ``max_side``."""
    import cv2

    h, w = fg_prob.shape
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(fg_prob.astype(np.float32), size, interpolation=cv2.INTER_AREA) if scale < 1 else fg_prob
    grey = np.clip(np.round(small * 255), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(grey, "L").save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue(), size[0], size[1]


OVERLAY_RGB = (255, 0, 190)


def overlay_rgba_png(grey_png: bytes, max_side: int | None = None) -> bytes:
    """The stored probability PNG as a transparent overlay: magenta whose opacity is the probability."""
    grey = PILImage.open(io.BytesIO(grey_png)).convert("L")
    if max_side and max(grey.size) > max_side:
        grey.thumbnail((max_side, max_side))
    prob = np.asarray(grey, np.float32) / 255.0
    rgba = np.zeros((*prob.shape, 4), np.uint8)
    rgba[..., :3] = OVERLAY_RGB
    rgba[..., 3] = np.round(np.clip(prob, 0, 1) * 170).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buffer, "PNG", optimize=False, compress_level=3)
    return buffer.getvalue()
