"""Decoded photos kept in a small LRU per process: the click-a-nail endpoint and the label suggestions (asked
again after every autosave of the annotation page) decode an image's photo once, not on every request.

The cached arrays are read-only (shared between requests). The LRU is ``caching.lru.LoadOnceLRU``: requests
for the same photo at the same time share one decode."""
from __future__ import annotations

import cv2
import numpy as np

from caching.lru import LoadOnceLRU

from .models import Image

PHOTO_CACHE_SIZE = 3            # decoded photos kept per process (a 12 MP one is 36 MB)
SUGGESTION_SIDE = 1024          # the suggester reads the photo at most this long (12 MP at full size: ~0.6 s)

#: ``(image id, its file's name)`` -> ``(rgb, small, scale)`` (``keys()``: least recently used first; ``clear()``).
decoded = LoadOnceLRU(PHOTO_CACHE_SIZE)


def small_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """``(small, scale)``: the photo itself, or a copy at most ``SUGGESTION_SIDE`` long (``scale`` = its size /
    the photo's), what the suggester reads."""
    scale = min(1.0, SUGGESTION_SIDE / max(rgb.shape[:2]))
    if scale == 1.0:
        return rgb, scale
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _decode(image: Image) -> tuple[np.ndarray, np.ndarray, float]:
    rgb = image.read_rgb()
    rgb.setflags(write=False)
    return (rgb, *small_copy(rgb))


def photo_of(image: Image) -> tuple[np.ndarray, np.ndarray, float]:
    """``(rgb, small, scale)``: the image's decoded photo (uint8 RGB) and a copy at most ``SUGGESTION_SIDE``
    long (``scale`` = its size / the photo's), made once and kept in a small LRU (key: the image and its stored
    file's name, so a replaced file is decoded again). FileNotFoundError when the file is gone."""
    return decoded.get((image.pk, image.file.name), lambda: _decode(image))
