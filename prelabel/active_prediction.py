"""The active model's outputs on a photo, kept per process so that the network runs once per photo for both
of pre-labeling's providers to the annotation page (issue #18): click-a-nail's nail probability
(``click_foreground.py``) and the label suggestions' per-nail votes (``model_votes.py``).

``kept_outputs(image, rgb, version)`` runs the version's predictor (``training.serving.predictor_for``: the one
predictor cache) on the photo resized to the network's input size (``ml.nail_votes.shrunk_prediction``: the same
input as the predictor's own resize) and keeps its outputs at that size, float16 (class probabilities, direction
field, nail probability: ~5 MB for a 480 px input), in a small LRU (``caching.lru.LoadOnceLRU``) keyed by
(image, its file, model version, its weights). A replaced photo or new weights are a new key.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caching.lru import LoadOnceLRU
from ml.nail_votes import shrunk_prediction
from training.models import ModelVersion
from training.serving import predictor_for

CACHE_SIZE = 4
#: ``cache_key(image, version)`` -> :class:`KeptOutputs`.
outputs = LoadOnceLRU(CACHE_SIZE)


@dataclass(frozen=True)
class KeptOutputs:
    """A prediction at the network's input size; a head the model never trained is None."""
    class_prob: np.ndarray | None     # float16 h x w x 10
    field: np.ndarray | None          # float16 h x w x 2
    fg_prob: np.ndarray               # float16 h x w
    scale: tuple[float, float]        # (sx, sy): output px per photo px


def cache_key(image, version) -> tuple:
    return image.pk, image.file.name, version.pk, version.weights.name


def active_version():
    """The active ModelVersion when it has weights, else None."""
    version = ModelVersion.objects.active()
    return version if version is not None and version.weights else None


def _half(array):
    return None if array is None else array.astype(np.float16)


def _predict(version, rgb: np.ndarray) -> KeptOutputs:
    prediction, scale = shrunk_prediction(predictor_for(version), rgb)
    return KeptOutputs(_half(prediction.class_prob), _half(prediction.field), _half(prediction.fg_prob), scale)


def kept_outputs(image, rgb: np.ndarray, version) -> KeptOutputs:
    """The outputs of ``version`` on this image's photo ``rgb``, computed once and kept."""
    return outputs.get(cache_key(image, version), lambda: _predict(version, rgb))
