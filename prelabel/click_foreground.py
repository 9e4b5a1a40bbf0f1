"""The active model's nail probability for click-a-nail (labeling/click_nail.py, issue #18), registered as
labeling's foreground provider from prelabel/apps.py.

``active_foreground(image, rgb)`` takes the active model's outputs on the photo from ``active_prediction.py``
(the network's run shared with the label suggestions' votes: one run per photo), brings their nail probability
to the photo's size (``ml.predict.foreground_at``: click-a-nail crops its window from the full-size map), and
keeps that map, uint8 (255 = nail: a 12 MP map is 12 MB), in a small LRU keyed like the outputs, so the next
clicks on the image neither run the network nor upsample again. ``None`` when no model is active.
"""
from __future__ import annotations

import numpy as np

from caching.lru import LoadOnceLRU

from .active_prediction import active_version, cache_key, kept_outputs

CACHE_SIZE = 4
#: ``active_prediction.cache_key(image, version)`` -> the photo-size uint8 nail probability.
maps = LoadOnceLRU(CACHE_SIZE)


def _full_size(image, rgb: np.ndarray, version) -> np.ndarray:
    from ml.predict import foreground_at  # torch is imported on first use only

    height, width = rgb.shape[:2]
    return foreground_at(kept_outputs(image, rgb, version).fg_prob, height, width)


def active_foreground(image, rgb: np.ndarray):
    """``(fg_prob as uint8, model version name)`` of the active model for this photo, or None."""
    version = active_version()
    if version is None:
        return None
    return maps.get(cache_key(image, version), lambda: _full_size(image, rgb, version)), version.name
