"""The active model's nail probability for click-a-nail (labeling/click_nail.py, issue #18), registered as
labeling's foreground provider from prelabel/apps.py.

``active_foreground(image, rgb)`` runs the active ModelVersion (``training.serving.predictor_for``: the one
predictor cache) on the photo once and keeps the probability map, as uint8 (255 = nail: a 12 MP map is
12 MB), in a small LRU keyed by (image, its file, model version, its weights), so the next clicks on the
image reuse it. Only the network's probability is needed here, so the predictor is called directly rather
than through ``training.serving.predict_picture`` (whose post-processing and uncertainty would be thrown
away). ``None`` when no model is active.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from training.models import ModelVersion
from training.serving import predictor_for

CACHE_SIZE = 4
_maps: OrderedDict = OrderedDict()
_lock = threading.Lock()


def cache_key(image, version) -> tuple:
    return image.pk, image.file.name, version.pk, version.weights.name


def active_foreground(image, rgb: np.ndarray):
    """``(fg_prob as uint8, model version name)`` of the active model for this photo, or None."""
    version = ModelVersion.objects.active()
    if version is None or not version.weights:
        return None
    key = cache_key(image, version)
    with _lock:
        if key in _maps:
            _maps.move_to_end(key)
            return _maps[key], version.name
    fg_prob = predictor_for(version)(np.ascontiguousarray(rgb)).fg_prob
    quantized = np.clip(np.round(fg_prob * 255.0), 0, 255).astype(np.uint8)
    with _lock:
        _maps[key] = quantized
        while len(_maps) > CACHE_SIZE:
            _maps.popitem(last=False)
    return quantized, version.name


def cached_keys() -> list[tuple]:
    with _lock:
        return list(_maps)


def clear_cache() -> None:
    with _lock:
        _maps.clear()
