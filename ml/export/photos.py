"""Parity photos and the inputs made of them: real photos (``$NAILSET_PARITY_PHOTOS``, default
``../shared/data/nails-cc0/images``) or, only where there is none, synthetic pictures; each resized the
evaluation's way (dynamic artifacts) or to a fixed size (Core ML)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.data import eval_size_for, resize_for_eval

from .spec import PROJECT_ROOT, SIZE_MULTIPLE

__all__ = ["DEFAULT_PHOTOS_DIR", "PHOTOS_ENV", "Photo", "default_fixed_size", "default_long_side", "parity_photos",
           "photos_dir", "prepare_input", "sample_size", "synthetic_photos"]

#: Where the parity photos come from unless told otherwise (real photos; see ../shared/data/README.md).
PHOTOS_ENV = "NAILSET_PARITY_PHOTOS"
DEFAULT_PHOTOS_DIR = PROJECT_ROOT.parent / "shared" / "data" / "nails-cc0" / "images"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class Photo:
    name: str
    rgb: np.ndarray  # uint8 H x W x 3
    synthetic: bool = False


def synthetic_photos(count: int = 2, seed: int = 0) -> list[Photo]:
    """Smooth random colour fields with a few bright ellipses (nail-like blobs): only where no real photo
    is to be had; reports say so (``synthetic``)."""
    import cv2

    rng = np.random.default_rng(seed)
    photos = []
    for k in range(count):
        h, w = (360, 480) if k % 2 == 0 else (480, 360)
        small = rng.uniform(60, 200, size=(6, 8, 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        for _ in range(6):
            center = (int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20)))
            axes = (int(rng.integers(6, 20)), int(rng.integers(10, 30)))
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360,
                        tuple(float(v) for v in rng.uniform(180, 255, 3)), -1)
        photos.append(Photo(f"synthetic-{k + 1}", np.clip(img, 0, 255).astype(np.uint8), synthetic=True))
    return photos


def photos_dir() -> Path | None:
    env = os.environ.get(PHOTOS_ENV)
    folder = Path(env).expanduser() if env else DEFAULT_PHOTOS_DIR
    return folder if folder.is_dir() else None


def parity_photos(paths: Iterable[str | os.PathLike] | None = None, count: int = 3) -> list[Photo]:
    """``count`` real photos: the given files, else spread evenly over the sorted photos of
    ``$NAILSET_PARITY_PHOTOS`` (default ``../shared/data/nails-cc0/images``); synthetic pictures only when
    there is no photo at all."""
    from PIL import Image, ImageOps

    if paths is None:
        folder = photos_dir()
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if folder else []
        if count and len(files) > count:
            step = len(files) / count
            files = [files[int(i * step)] for i in range(count)]
    else:
        files = [Path(p) for p in paths]
    photos = []
    for f in files:
        with Image.open(f) as im:
            photos.append(Photo(f.name, np.asarray(ImageOps.exif_transpose(im).convert("RGB"))))
    return photos or synthetic_photos(max(1, min(count, 2)))


def prepare_input(photo: Photo, size: tuple[int, int] | int) -> np.ndarray:
    """A photo as a 1 x 3 x H x W float32 input in [0, 1]: exactly (h, w) for a fixed-size artifact, or the
    evaluation's resize (longer side ``size``, both sides multiples of 32) for a dynamic one."""
    import cv2

    if isinstance(size, int):
        resized = resize_for_eval(photo.rgb, size)
    else:
        h, w = size
        src_h, src_w = photo.rgb.shape[:2]
        interp = cv2.INTER_AREA if h * w < src_h * src_w else cv2.INTER_LINEAR
        resized = cv2.resize(photo.rgb, (w, h), interpolation=interp)
    return np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def default_long_side(meta: dict | None, cap: int | None = None) -> int:
    """The checkpoint's evaluation size (longer side), optionally capped; 480 when unknown."""
    config = (meta or {}).get("config") or {}
    size = config.get("val_size") or (config.get("augment") or {}).get("long_side") or 480
    size = max(SIZE_MULTIPLE, int(round(int(size) / SIZE_MULTIPLE)) * SIZE_MULTIPLE)
    return min(size, cap) if cap else size


def default_fixed_size(meta: dict | None) -> tuple[int, int]:
    """Fixed input size of a Core ML artifact unless told: landscape 3:4 at the evaluation size."""
    return eval_size_for(3, 4, default_long_side(meta))



def sample_size(long_side: int) -> tuple[int, int]:
    """The landscape 3:4 input (h, w) of a long side: what an export traces with."""
    return eval_size_for(3, 4, long_side)
