"""The active model's nail probability for click-a-nail (labeling/click_nail.py, issue #18), registered as
labeling's foreground provider from prelabel/apps.py.

``active_foreground(image, rgb)`` runs the active ModelVersion (``training.serving.predictor_for``: the one
predictor cache) on the photo once and keeps the probability map, as uint8 (255 = nail: a 12 MP map is
12 MB), in a small LRU (``caching.lru.LoadOnceLRU``) keyed by (image, its file, model version, its weights),
so the next clicks on the image reuse it. Only the network's probability is needed here, so the predictor
is called directly rather than through ``training.serving.predict_picture`` (whose post-processing and
uncertainty would be thrown away). ``None`` when no model is active.
"""
from __future__ import annotations

import numpy as np

from caching.lru import LoadOnceLRU
from training.models import ModelVersion
from training.serving import predictor_for

CACHE_SIZE = 4
_maps = LoadOnceLRU(CACHE_SIZE)


def cache_key(image, version) -> tuple:
    return image.pk, image.file.name, version.pk, version.weights.name


def _quantized_foreground(version, rgb: np.ndarray) -> np.ndarray:
    fg_prob = predictor_for(version)(np.ascontiguousarray(rgb)).fg_prob
    return np.clip(np.round(fg_prob * 255.0), 0, 255).astype(np.uint8)


def active_foreground(image, rgb: np.ndarray):
    """``(fg_prob as uint8, model version name)`` of the active model for this photo, or None."""
    version = ModelVersion.objects.active()
    if version is None or not version.weights:
        return None
    return _maps.get(cache_key(image, version), lambda: _quantized_foreground(version, rgb)), version.name


def cached_keys() -> list[tuple]:
    return _maps.keys()


def clear_cache() -> None:
    _maps.clear()
