"""The served model: a ModelVersion's checkpoint loaded into an ``ml.predict.Predictor``, once per process,
and one picture run through it (network -> post-processing -> uncertainty).

Pre-labeling (prelabel/job_kinds.py), the predict endpoint (training/api.py) and the try-on
(tryon/rendering.py) all take their predictor from here, so a model version loaded for one serves the
others. The cache is a small LRU (``caching.lru.LoadOnceLRU``) keyed by the version's id and its weights
file's name (Django's storage never overwrites a stored file: new weights get a new name). It is thread-safe,
and a version is loaded once even when several threads ask for it at the same time. Predictors run with
``NAILSET_PRELABEL_THREADS`` torch threads (default 1: one image at a time per CPU worker process; more
threads per process only fight each other when several workers share the cores; 0: torch's default). torch
is imported on first use only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from caching.lru import LoadOnceLRU
from ml.nail_votes import nail_votes
from ml.postprocess import Nail, postprocess
from ml.uncertainty import edge_entropy

#: How many loaded model versions a process keeps (the active one and, say, a candidate being compared).
CACHE_SIZE = 2
#: ``cache_key(version)`` -> its ``ml.predict.Predictor`` (``keys()``: least recently used first; ``clear()``).
predictors = LoadOnceLRU(CACHE_SIZE)


def cache_key(version) -> tuple[int, str]:
    """What identifies a loaded checkpoint: the version's id and its weights file."""
    return version.pk, version.weights.name


def _load_predictor(version):
    from ml.predict import Predictor  # torch is imported on first use only

    threads = int(getattr(settings, "NAILSET_PRELABEL_THREADS", 1)) or None
    return Predictor.from_checkpoint(version.weights.path, threads=threads)  # local media storage


def predictor_for(version):
    """The ``ml.predict.Predictor`` of a ModelVersion, loaded once per process and shared by every caller."""
    return predictors.get(cache_key(version), lambda: _load_predictor(version))


@dataclass
class ImagePrediction:
    nails: list[Nail]
    fg_prob: np.ndarray
    uncertainty: float
    input_size: tuple[int, int]
    seconds: float
    votes: list | None = None  # per nail, the trained class / direction heads' vote (ml.nail_votes); None: untrained


def predict_picture(predictor, rgb: np.ndarray, size: int | None = None, *, votes: bool = False) -> ImagePrediction:
    """Network -> post-processing -> uncertainty for one uint8 RGB picture; with ``votes``, each nail's vote
    of the trained class / direction heads too (``ml.nail_votes``; pre-labeling's drafts weigh them)."""
    started = time.perf_counter()
    prediction = predictor(rgb, size)
    nails = postprocess(*prediction.arrays, image=rgb)
    uncertainty = edge_entropy(prediction.fg_prob)
    nail_vote_list = None
    if votes and (prediction.class_prob is not None or prediction.field is not None):
        nail_vote_list = nail_votes([nail.polygon for nail in nails], prediction.class_prob, prediction.field,
                                    prediction.fg_prob)
    return ImagePrediction(nails, prediction.fg_prob, uncertainty, tuple(prediction.input_size),
                           time.perf_counter() - started, nail_vote_list)
