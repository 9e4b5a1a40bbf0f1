"""Training data for the cascade: a torch Dataset over one split of a "masks" export, with augmentation.

Plain PyTorch + NumPy + OpenCV; never imports Django. The export is read with
``dataset.formats.masks.MasksReader`` (a folder or a zip; see ``docs/formats.md``).

Samples are dicts of tensors (batched by the default collate)::

    image       3 x H x W float32, RGB in [0, 1] (the model normalises inside)
    fg          H x W int64   0 background, 1 nail
    cls         H x W int64   0 background, 1..10 finger (1-5 left, 6-10 right), 255 unknown finger
    field       2 x H x W float32  unit vector base -> tip (x right, y down) inside nails with landmarks
    field_mask  H x W bool    pixel carries a field
    ignore      H x W bool    ignore region, or padding outside the image after a geometric transform
    index       int64         position of the entry in the split

Training mode (``train=True``): one affine warp per sample (random scale, rotation and crop to
``crop_size``; bilinear for the image, INTER_AREA pre-shrink when it shrinks a lot, nearest neighbour for
every label map), random horizontal flip (:func:`hflip_sample`: left <-> right finger classes, the field's
x negated), colour jitter (brightness, contrast, saturation, hue) and Gaussian blur. The direction field is
warped by nearest neighbour and its vectors are rotated by the same angle and re-normalised, so it still
points from base to tip of the transformed nail. Randomness comes from
``numpy.random.default_rng([seed, 0, epoch, index, draw])``: a sample depends only on (seed, epoch, index,
draw), where ``draw`` counts repeats of an image within one epoch, not on worker processes or the order
of reading, which makes training reproducible and resumable.

Eval mode (``train=False``): the image resized so its longer side is ``eval_size`` and both sides are
multiples of 32 (:func:`eval_size_for`); the labels stay at the image's own resolution (metrics compare
the prediction resized back to it). Use ``batch_size=1``: sizes differ.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dataset.formats.masks import MasksReader
from dataset.raster import rasterize
from ml.dataclass_dicts import from_known_keys

__all__ = [
    "AUGMENT_PRESETS",
    "AugmentConfig",
    "MasksDataset",
    "FINGER_FLIP",
    "augment_sample",
    "eval_size_for",
    "make_synthetic_export",
    "simulated_prediction",
    "synthetic_hand",
    "hflip_sample",
    "resize_for_eval",
    "to_tensors",
]

#: Finger class after a horizontal flip: 1-5 (left) <-> 6-10 (right); 0 and 255 unchanged.
FINGER_FLIP = np.arange(256, dtype=np.uint8)
FINGER_FLIP[1:6] = np.arange(6, 11)
FINGER_FLIP[6:11] = np.arange(1, 6)

_LABELS_NEAREST = ("classes", "foreground", "ignore", "field_mask")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of training crops.

    ``base_long_side``: the image is first scaled so its longer side has this length (None: crop_size /
    0.7, e.g. 640 for 448 crops: the native model runs on 640 x 480 frames); then by a log-uniform random
    factor in ``scale_range``; then cropped (random position) to ``crop_size``, padding (ignored by the
    losses) where the scaled image is smaller. ``rotation``: uniform angle in +-degrees. ``hflip``:
    probability. Colour jitter factors are uniform in ``1 +- value`` (hue: +- degrees); ``blur_prob`` of a
    Gaussian blur with sigma in ``blur_sigma`` (pixels).
    """

    crop_size: int = 448
    base_long_side: int | None = None
    scale_range: tuple[float, float] = (0.67, 1.5)
    rotation: float = 30.0
    hflip: float = 0.5
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 8.0
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale_range", tuple(float(v) for v in self.scale_range))
        object.__setattr__(self, "blur_sigma", tuple(float(v) for v in self.blur_sigma))
        if self.crop_size < 8:
            raise ValueError(f"crop_size must be at least 8, got {self.crop_size}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be 0 < lo <= hi, got {self.scale_range}")

    @property
    def long_side(self) -> int:
        return self.base_long_side or round(self.crop_size / 0.7)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scale_range"], d["blur_sigma"] = list(self.scale_range), list(self.blur_sigma)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentConfig:
        return from_known_keys(cls, data, "augment")


AUGMENT_PRESETS: dict[str, AugmentConfig] = {
    "native-448": AugmentConfig(crop_size=448),
    "web-336": AugmentConfig(crop_size=336),
    "tiny": AugmentConfig(crop_size=64, base_long_side=64, scale_range=(0.8, 1.25), rotation=20.0),
}


# ----------------------------------------------------------------------------------------------------
# Array-level transforms (samples as dicts of NumPy arrays, H x W layout, as MasksReader.load returns)
# ----------------------------------------------------------------------------------------------------


def hflip_sample(sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mirror left-right: every map flipped along x, finger classes 1-5 <-> 6-10 (0 and 255 kept), the
    field's x component negated. Flipping twice gives the sample back exactly."""
    out = dict(sample)
    for key, value in sample.items():
        if isinstance(value, np.ndarray) and value.ndim >= 2:
            out[key] = np.ascontiguousarray(value[:, ::-1])
    if "classes" in out:
        out["classes"] = FINGER_FLIP[out["classes"]]
    if "field" in out:
        field = out["field"].copy()
        field[..., 0] = -field[..., 0]
        field[..., 0][field[..., 0] == 0] = 0.0  # no -0.0
        out["field"] = field
    return out


def _rotate_field(field: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply the 2x2 linear part of a transform to every field vector and re-normalise (zero outside
    ``mask``)."""
    out = field @ matrix.T.astype(np.float32)
    norm = np.linalg.norm(out, axis=-1, keepdims=True)
    out = np.where(mask[..., None] > 0, out / np.maximum(norm, 1e-12), 0.0).astype(np.float32)
    return out


def _cv_affine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 OpenCV matrix (pixel centres at integers) of the map dst = a @ src + b written in continuous
    coordinates (pixel (c, r) covers [c, c+1) x [r, r+1), as dataset.raster)."""
    return np.hstack([a, (a @ np.array([0.5, 0.5]) + b - 0.5)[:, None]]).astype(np.float64)


def augment_sample(sample: Mapping[str, np.ndarray], config: AugmentConfig, rng: np.random.Generator,
                   return_params: bool = False):
    """One random training crop of ``sample`` (image uint8 H x W x 3 RGB; classes, foreground, ignore,
    field_mask uint8; field float32 H x W x 2). Returns the same keys at ``crop_size`` (image float32 in
    [0, 1]); ``ignore`` also marks padding. With ``return_params``: ``(sample, params)``, params holding
    the continuous-coordinate affine map ``dst = A @ src + b`` ("A", "b"), "flip", "angle", "scale"."""
    h, w = sample["classes"].shape
    size = config.crop_size
    scale = config.long_side / max(h, w) * math.exp(rng.uniform(*np.log(config.scale_range)))
    angle = rng.uniform(-config.rotation, config.rotation) if config.rotation else 0.0
    offsets = []
    for extent in (w * scale, h * scale):
        lo, hi = sorted((0.0, extent - size))
        offsets.append(rng.uniform(lo, hi))
    theta = math.radians(angle)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    centre = np.array([size / 2, size / 2])
    a = rot * scale
    b = rot @ (-np.array(offsets) - centre) + centre
    flip = bool(rng.uniform() < config.hflip)

    out: dict[str, np.ndarray] = {}
    image = sample["image"]
    a_img = a
    if scale < 0.75:  # shrink with area averaging first, then warp the rest (no aliasing)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        a_img = a @ np.diag([w / sw, h / sh])
    border = {"borderMode": cv2.BORDER_CONSTANT}
    out["image"] = cv2.warpAffine(image, _cv_affine(a_img, b), (size, size), flags=cv2.INTER_LINEAR,
                                  borderValue=(0, 0, 0), **border)
    m = _cv_affine(a, b)
    nearest = {"flags": cv2.INTER_NEAREST, **border}
    for key in _LABELS_NEAREST:
        out[key] = cv2.warpAffine(np.ascontiguousarray(sample[key]), m, (size, size), borderValue=0, **nearest)
    inside = cv2.warpAffine(np.ones((h, w), np.uint8), m, (size, size), borderValue=0, **nearest)
    out["ignore"] = (out["ignore"] | (inside == 0)).astype(np.uint8)
    field = cv2.warpAffine(np.ascontiguousarray(sample["field"]), m, (size, size), borderValue=0, **nearest)
    out["field"] = _rotate_field(field.reshape(size, size, 2), out["field_mask"], rot)
    if flip:
        out = hflip_sample(out)
    out["image"] = _photometric(out["image"], config, rng)
    if return_params:
        a_out, b_out = a, b
        if flip:  # x -> size - x
            mirror = np.diag([-1.0, 1.0])
            a_out, b_out = mirror @ a, mirror @ b + np.array([size, 0.0])
        return out, {"A": a_out, "b": b_out, "flip": flip, "angle": angle, "scale": scale}
    return out


def _photometric(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Colour jitter and blur on a uint8 RGB image; returns float32 RGB in [0, 1]."""
    img = image.astype(np.float32) / 255.0
    gray_w = np.array([0.299, 0.587, 0.114], np.float32)
    if config.brightness:
        img = img * rng.uniform(1 - config.brightness, 1 + config.brightness)
    if config.contrast:
        mean = float((img @ gray_w).mean())
        img = (img - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
    if config.saturation:
        gray = (img @ gray_w)[..., None]
        img = (img - gray) * rng.uniform(1 - config.saturation, 1 + config.saturation) + gray
    img = np.clip(img, 0.0, 1.0)
    if config.hue:
        shift = rng.uniform(-config.hue, config.hue)
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # float: hue in degrees [0, 360)
        hsv[..., 0] = (hsv[..., 0] + shift) % 360.0
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if config.blur_prob and rng.uniform() < config.blur_prob:
        sigma = rng.uniform(*config.blur_sigma)
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def eval_size_for(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) with the longer side ``size`` rounded to a multiple of 32 and the shorter side scaled with
    it and rounded to a multiple of 32 (at least 32)."""
    long_side = max(32, round(size / 32) * 32)
    if width >= height:
        return max(32, round(height * long_side / width / 32) * 32), long_side
    return long_side, max(32, round(width * long_side / height / 32) * 32)


def resize_for_eval(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 RGB image resized per :func:`eval_size_for` (area averaging when shrinking)."""
    h, w = image.shape[:2]
    eh, ew = eval_size_for(h, w, size)
    interp = cv2.INTER_AREA if eh * ew < h * w else cv2.INTER_LINEAR
    return cv2.resize(image, (ew, eh), interpolation=interp)


def to_tensors(sample: Mapping[str, np.ndarray], index: int = 0) -> dict[str, torch.Tensor]:
    """Arrays of one sample -> the tensors described in the module docstring."""
    image = sample["image"]
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        "fg": torch.from_numpy((sample["foreground"] > 0).astype(np.int64)),
        "cls": torch.from_numpy(sample["classes"].astype(np.int64)),
        "field": torch.from_numpy(np.ascontiguousarray(sample["field"].transpose(2, 0, 1))).float(),
        "field_mask": torch.from_numpy(sample["field_mask"] > 0),
        "ignore": torch.from_numpy(sample["ignore"] > 0),
        "index": torch.tensor(index, dtype=torch.int64),
    }


# ----------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------


class MasksDataset(Dataset):
    """One split of a masks export (folder or zip).

    Args:
        source: the export folder or zip.
        split: "train", "val" or "test".
        train: augment (random crops) or not (eval resize, labels at the image's own size).
        augment: an :class:`AugmentConfig` (or a preset name) for ``train=True``.
        eval_size: longer side for ``train=False`` (see :func:`eval_size_for`); None keeps the image size.
        seed: base of every sample's random generator; call :meth:`set_epoch` every epoch.
        max_images: use only the first n entries of the split (manifest order).
        cache: keep every decoded sample in memory after its first read (small datasets, tests).
    """

    def __init__(self, source, split: str = "train", *, train: bool = True,
                 augment: AugmentConfig | str | None = None, eval_size: int | None = 448,
                 seed: int = 0, max_images: int | None = None, cache: bool = False) -> None:
        self.source = os.fspath(source) if not hasattr(source, "read") else source
        self.split = split
        self.train = train
        if isinstance(augment, str):
            augment = AUGMENT_PRESETS[augment]
        self.augment = augment or AugmentConfig()
        self.eval_size = eval_size
        self.seed = int(seed)
        self.epoch = 0
        with MasksReader(self.source) as reader:
            manifest = reader.manifest
        self.manifest_info = {k: v for k, v in manifest.items() if k != "images"}
        self.entries = [e for e in manifest["images"] if e.get("split") == split]
        if max_images is not None:
            self.entries = self.entries[:max_images]
        self._reader: MasksReader | None = None
        self._reader_pid: int | None = None
        self.cache = cache
        self._cache: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def has_classes(self) -> bool:
        return any(e.get("has_classes") for e in self.entries)

    @property
    def has_landmarks(self) -> bool:
        return any(e.get("has_landmarks") for e in self.entries)

    def reader(self) -> MasksReader:
        """A reader for this process (a zip handle must not be shared across worker processes)."""
        if self._reader is None or self._reader_pid != os.getpid():
            self._reader = MasksReader(self.source)
            self._reader_pid = os.getpid()
        return self._reader

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_reader"] = None
        state["_reader_pid"] = None
        return state

    def load(self, index: int) -> dict[str, np.ndarray]:
        """The raw arrays of entry ``index`` (MasksReader.load); do not modify them (they may be cached)."""
        if self.cache:
            if index not in self._cache:
                self._cache[index] = self.reader().load(self.entries[index])
            return self._cache[index]
        return self.reader().load(self.entries[index])

    def fill_cache(self) -> None:
        """With ``cache``: decode every entry now, in this process, so that DataLoader workers forked after it
        share the decoded photos instead of each decoding its own again every epoch. Without: nothing."""
        if self.cache:
            for index in range(len(self.entries)):
                self.load(index)

    def rng(self, key: int) -> np.random.Generator:
        """The generator of draw ``key // len`` of sample ``key % len`` in the current epoch."""
        draw, index = divmod(int(key), len(self.entries))
        return np.random.default_rng([self.seed, 0, self.epoch, index, draw])

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        """Sample ``key % len``; in training mode ``key // len`` numbers the draw of that sample within
        the epoch (a sampler that repeats images passes ``draw * len + index`` to get fresh crops)."""
        index = int(key) % len(self.entries)
        sample = self.load(index)
        if self.train:
            sample = augment_sample(sample, self.augment, self.rng(key))
        elif self.eval_size:
            sample = dict(sample, image=resize_for_eval(sample["image"], self.eval_size))
        return to_tensors(sample, index)


# ----------------------------------------------------------------------------------------------------
# Synthetic data (tests, benchmarks, demos)
# ----------------------------------------------------------------------------------------------------


def _ellipse(cx: float, cy: float, a: float, b: float, angle: float, n: int = 20) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ca, sa = math.cos(angle), math.sin(angle)
    x, y = a * np.cos(t), b * np.sin(t)
    return np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], 1)


def simulated_prediction(geometry: Mapping[str, Any], width: int, height: int, seed: int = 0, *,
                         nail_prob: float = 0.96, background_prob: float = 0.02, rim_prob: float = 0.3,
                         field_noise: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fg_prob, class_prob, field)`` as a well-trained model would give them for a frame labelled
    ``geometry`` (its nails' fingers and base/tip landmarks), float32 at full resolution as
    ``ml.predict`` hands them over: ``nail_prob`` inside nails, ``rim_prob`` on a one-pixel rim outside
    them, ``background_prob`` elsewhere; finger classes at 0.91 inside nails and random elsewhere; the
    base -> tip field plus Gaussian noise (sd ``field_noise``) everywhere. Post-processing and rendering
    tests and benchmarks feed this to ``ml.postprocess`` and its JavaScript port."""
    rng = np.random.default_rng(seed)
    rasters = rasterize(geometry, width, height)
    nail = rasters.foreground > 0
    fg = np.where(nail, nail_prob, background_prob).astype(np.float32)
    rim = (cv2.dilate(nail.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~nail
    fg[rim] = rim_prob
    cls = rng.dirichlet(np.ones(10), size=(height, width)).astype(np.float32)
    for k in range(1, 11):
        inside = rasters.classes == k
        cls[inside] = 0.01
        cls[inside, k - 1] = 0.91
    field = (rasters.field + rng.normal(0, field_noise, (height, width, 2))).astype(np.float32)
    return fg, cls, field


def synthetic_hand(rng: np.random.Generator, width: int, height: int, nails: int = 3,
                   classes: bool = True, landmarks: bool = True) -> tuple[np.ndarray, dict]:
    """A synthetic "hand" photo (uint8 RGB) and its geometry: a skin-coloured blob on a grey, noisy
    background with ``nails`` ellipses of vivid polish, each with a light free edge at its tip (so that
    the base -> tip direction can be learned), and a dark sleeve at the left (left hand) or right (right
    hand) edge. Every label can be learned from the picture, and a horizontal flip maps a valid sample to
    a valid sample: the finger class (when asked for) is the polish hue bucket (5 buckets: thumb..little)
    on the sleeve's hand; base/tip landmarks lie on each ellipse's major axis (when asked for)."""
    grey = rng.integers(60, 190)
    image = np.clip(grey + rng.normal(0, 10, (height, width, 1)) + rng.normal(0, 4, (height, width, 3)),
                    0, 255).astype(np.uint8)
    skin = np.clip(np.array([224, 172, 140]) + rng.integers(-25, 25, 3), 0, 255)
    hand = _ellipse(width * rng.uniform(0.45, 0.55), height * rng.uniform(0.45, 0.55), width * 0.42,
                    height * 0.34, rng.uniform(-0.3, 0.3), 40)
    cv2.fillPoly(image, [np.round(hand - 0.5).astype(np.int32)], [int(v) for v in skin])
    right = bool(rng.integers(0, 2))
    sleeve = max(2, width // 8)
    (image[:, width - sleeve:] if right else image[:, :sleeve])[:] = (30, 30, 60)
    geometry = {"nails": [], "ignore": []}
    buckets = rng.permutation(5)[:nails]
    scale = min(width, height)
    for k in range(nails):
        a, b = scale * rng.uniform(0.13, 0.18), scale * rng.uniform(0.08, 0.11)
        cx = width * (0.2 + 0.6 * (k + rng.uniform(0.3, 0.7)) / nails)
        cy = height * rng.uniform(0.35, 0.65)
        angle = rng.uniform(0, 2 * np.pi)
        poly = _ellipse(cx, cy, a, b, angle)
        hue = int(buckets[k]) * 36 + int(rng.integers(4, 32))  # OpenCV hue 0..179, 5 buckets of 36
        hsv = np.uint8([[[hue, 255, rng.integers(170, 256)]]])
        colour = [int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]]
        cv2.fillPoly(image, [np.round(poly - 0.5).astype(np.int32)], colour)
        d = np.array([math.cos(angle), math.sin(angle)]) * a * 0.8
        edge = _ellipse(cx + d[0] * 0.95, cy + d[1] * 0.95, a * 0.3, b * 0.8, angle)  # light free edge
        cv2.fillPoly(image, [np.round(edge - 0.5).astype(np.int32)], (245, 240, 235))
        finger = int(buckets[k]) + 1 + (5 if right else 0)
        nail = {"polygon": np.round(poly, 2).tolist(), "finger": finger if classes else None,
                "base": None, "tip": None}
        if landmarks:
            nail["base"] = np.round([cx - d[0], cy - d[1]], 2).tolist()
            nail["tip"] = np.round([cx + d[0], cy + d[1]], 2).tolist()
        geometry["nails"].append(nail)
    return image, geometry


def make_synthetic_export(root, train: int = 8, val: int = 2, size: tuple[int, int] = (64, 64), seed: int = 0,
                          partial_every: int = 3) -> str:
    """Write a masks export of synthetic hands (:func:`synthetic_hand`) into the folder ``root`` with the
    real exporter (``dataset.formats``); every ``partial_every``-th image has neither finger classes nor
    landmarks (as real imported data). Returns ``root``."""
    import hashlib

    from PIL import Image

    from dataset.formats import ExportRecord, FolderTarget, get_exporter

    root = os.fspath(root)
    src = os.path.join(root, "_sources")
    os.makedirs(src, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    width, height = size
    for i in range(train + val):
        partial = bool(partial_every) and i % partial_every == partial_every - 1
        image, geometry = synthetic_hand(rng, width, height, nails=int(rng.integers(2, 4)),
                                         classes=not partial, landmarks=not partial)
        path = os.path.join(src, f"img{i:04d}.png")
        Image.fromarray(image).save(path)
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        records.append(ExportRecord(image_id=i + 1, file_name=f"{i:06d}.png", source_path=path, width=width,
                                    height=height, participant=f"p{i}", split="train" if i < train else "val",
                                    geometry=geometry, sha256=digest))
    meta = {"snapshot": "synthetic", "content_hash": f"synthetic-{seed}", "created_at": "2026-01-01T00:00:00Z"}
    get_exporter("masks").export(iter(records), FolderTarget(root), meta)
    return root
