"""The active model's per-nail votes for the label suggestions (issue #16), registered as labeling's vote
provider from prelabel/apps.py.

``active_nail_votes(image, rgb, polygons)`` runs the active ModelVersion (``training.serving.predictor_for``,
the one predictor cache) once per photo at the network's input size (``ml.nail_votes.shrunk_prediction``)
and keeps its class probabilities, direction field and nail probability (float16, ~5 MB for a 480 px
input) in a small LRU (``caching.lru.LoadOnceLRU``) keyed like click-a-nail's maps (image, its file, model
version, its weights): the annotation page asks for suggestions after every autosave, with the polygons as they are now, so the votes
are read again from the kept outputs (``ml.nail_votes.nail_votes``) and the network runs once. ``None``
when no model is active or its class and direction heads were never trained (``ml.predict.heads_trained``).
"""
from __future__ import annotations

import numpy as np

from caching.lru import LoadOnceLRU
from ml.nail_votes import nail_votes, shrunk_prediction
from training.models import ModelVersion
from training.serving import predictor_for

from .click_foreground import cache_key

CACHE_SIZE = 4
_outputs = LoadOnceLRU(CACHE_SIZE)


def _half(array):
    return None if array is None else array.astype(np.float16)


def _kept_outputs(predictor, rgb: np.ndarray) -> tuple:
    prediction, scale = shrunk_prediction(predictor, rgb)
    return _half(prediction.class_prob), _half(prediction.field), _half(prediction.fg_prob), scale


def active_nail_votes(image, rgb: np.ndarray, polygons):
    """Per-polygon votes of the active model for this photo, or None."""
    version = ModelVersion.objects.active()
    if version is None or not version.weights:
        return None
    predictor = predictor_for(version)
    if not (predictor.heads["classes"] or predictor.heads["field"]):
        return None
    class_prob, field, fg_prob, scale = _outputs.get(cache_key(image, version), lambda: _kept_outputs(predictor, rgb))
    return nail_votes(polygons, class_prob, field, fg_prob, scale=scale)


def cached_keys() -> list[tuple]:
    return _outputs.keys()


def clear_cache() -> None:
    _outputs.clear()
