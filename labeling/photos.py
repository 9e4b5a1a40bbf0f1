"""Decoded photos kept in a small LRU per process: the click-a-nail endpoint and the label suggestions (asked
again after every autosave of the annotation page) decode an image's photo once, not on every request.

The cached arrays are read-only (shared between requests)."""
from __future__ import annotations

import threading
from collections import OrderedDict

import cv2
import numpy as np

from .models import Image

PHOTO_CACHE_SIZE = 3            # decoded photos kept per process (a 12 MP one is 36 MB)
SUGGESTION_SIDE = 1024          # the suggester reads the photo at most this long (12 MP at full size: ~0.6 s)

_photos: OrderedDict = OrderedDict()
_photos_lock = threading.Lock()


def photo_of(image: Image) -> tuple[np.ndarray, np.ndarray, float]:
    """``(rgb, small, scale)``: the image's decoded photo (uint8 RGB) and a copy at most ``SUGGESTION_SIDE``
    long (``scale`` = its size / the photo's), made once and kept in a small LRU (key: the image and its stored
    file's name, so a replaced file is decoded again). FileNotFoundError when the file is gone."""
    key = (image.pk, image.file.name)
    with _photos_lock:
        if key in _photos:
            _photos.move_to_end(key)
            return _photos[key]
    rgb = image.read_rgb()
    rgb.setflags(write=False)
    scale = min(1.0, SUGGESTION_SIDE / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                                                interpolation=cv2.INTER_AREA)
    with _photos_lock:
        _photos[key] = rgb, small, scale
        while len(_photos) > PHOTO_CACHE_SIZE:
            _photos.popitem(last=False)
    return rgb, small, scale


def cached_photos() -> list[tuple[int, str]]:
    """The keys of the decoded photos kept, least recently used first."""
    with _photos_lock:
        return list(_photos)


def clear_photo_cache() -> None:
    with _photos_lock:
        _photos.clear()
