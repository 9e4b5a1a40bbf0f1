"""A model version's predictions for one picture: nails with confidence, uncertainty, the probability map.

Models are loaded once per process (a small cache keyed by model version and weights file) and run with
``NAILSET_PRELABEL_THREADS`` torch threads (default 1: one image at a time per CPU worker process; more
threads per process only fight each other when several workers share the cores).
"""
from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from PIL import Image as PILImage

from ml.postprocess import Nail, postprocess
from ml.uncertainty import edge_entropy

OVERLAY_MAX_SIDE = 512
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 2
_LOCK = threading.Lock()


def predictor_for(version):
    """The ``ml.predict.Predictor`` of a ModelVersion, loaded once per process."""
    from ml.predict import Predictor

    key = (version.pk, version.weights.name)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    threads = int(getattr(settings, "NAILSET_PRELABEL_THREADS", 1)) or None
    predictor = Predictor.from_checkpoint(version.weights.path, threads=threads)  # local media storage
    with _LOCK:
        _CACHE[key] = predictor
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return predictor


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


@dataclass
class ImagePrediction:
    nails: list[Nail]
    fg_prob: np.ndarray
    uncertainty: float
    input_size: tuple[int, int]
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def confidences(self) -> list[float]:
        return [float(n.confidence) for n in self.nails]


def predict_picture(predictor, rgb: np.ndarray, size: int | None = None) -> ImagePrediction:
    """Network -> post-processing -> uncertainty for one uint8 RGB picture."""
    started = time.perf_counter()
    prediction = predictor(rgb, size)
    nails = postprocess(*prediction.arrays, image=rgb)
    uncertainty = edge_entropy(prediction.fg_prob)
    return ImagePrediction(nails, prediction.fg_prob, uncertainty, tuple(prediction.input_size),
                           time.perf_counter() - started)


def read_rgb(image) -> np.ndarray:
    """A stored (normalized) Image as a uint8 RGB array."""
    with image.file.open("rb") as handle:
        picture = PILImage.open(handle)
        picture.load()
    return np.asarray(picture.convert("RGB"))


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
