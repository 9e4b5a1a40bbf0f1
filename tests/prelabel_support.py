"""A tiny trained model for the pre-labeling tests, made once and kept.

Training goes straight through ``ml.train.train`` on a masks export written with the dataset exporter
(no database): 12 synthetic 64 px skin-coloured pictures with two pink nails each (fingers 2 and 7, with
base/tip landmarks), 80 steps of the "tiny" preset on one thread (about 10 s; several threads are much
slower when other processes share the cores). The checkpoint is cached under
``VAR_DIR/test-cache/`` keyed by a hash of ``ml/`` and this recipe, so later sessions reuse it.
"""
from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

SKIN = (180, 160, 150)
POLISH = (220, 40, 120)
RECIPE = "tiny steps=80 batch=8 images=12 size=64 nails=2 ellipse=13x8 seed=0 threads=1"


def ellipse(cx, cy, rx, ry, angle, n=16):
    c, s = math.cos(angle), math.sin(angle)
    return [[round(cx + rx * math.cos(t) * c - ry * math.sin(t) * s, 2), round(cy + rx * math.cos(t) * s + ry * math.sin(t) * c, 2)]
            for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def nail_photo(width=96, height=72, nails=((48, 36, 18, 11, 0.5),), background=SKIN) -> PILImage.Image:
    """A picture like the training data: pink nails (cx, cy, rx, ry, angle) on a skin-coloured ground."""
    picture = PILImage.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(picture)
    for cx, cy, rx, ry, angle in nails:
        draw.polygon([tuple(p) for p in ellipse(cx, cy, rx, ry, angle)], fill=POLISH)
    return picture


def _masks_export(root: Path, n: int = 12, size: int = 64, seed: int = 0) -> Path:
    from dataset.formats import ExportRecord, FolderTarget, get_exporter
    from dataset.geometry import normalize_geometry

    rng = np.random.default_rng(seed)
    (root / "src").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        picture = PILImage.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 210, 3)))
        draw = ImageDraw.Draw(picture)
        nails = []
        for k in range(2):
            cx, cy, angle = rng.uniform(16, size - 16), rng.uniform(16, size - 16), rng.uniform(0, math.pi)
            polygon = ellipse(cx, cy, 13, 8, angle)
            draw.polygon([tuple(p) for p in polygon], fill=POLISH)
            dx, dy = 9 * math.cos(angle), 9 * math.sin(angle)
            nails.append({"polygon": polygon, "finger": 2 + 5 * k, "base": [round(cx - dx, 2), round(cy - dy, 2)],
                          "tip": [round(cx + dx, 2), round(cy + dy, 2)]})
        path = root / "src" / f"{i:03d}.png"
        picture.save(path)
        records.append(ExportRecord(i + 1, path.name, str(path), size, size, f"P{i % 4}", "val" if i % 4 == 3 else "train",
                                    normalize_geometry({"nails": nails, "ignore": []}), hashlib.sha256(path.read_bytes()).hexdigest()))
    with FolderTarget(root / "masks") as target:
        get_exporter("masks").export(records, target, {"snapshot": "prelabel-test", "content_hash": "test", "created_at": "2026-01-01"})
    return root / "masks"


def _key() -> str:
    ml = Path(__file__).resolve().parent.parent / "ml"
    digest = hashlib.sha256(RECIPE.encode())
    for path in sorted(ml.rglob("*.py")):
        digest.update(path.relative_to(ml).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def tiny_checkpoint() -> Path:
    """The cached checkpoint (trained now if missing)."""
    import torch
    from django.conf import settings

    cache = Path(settings.VAR_DIR) / "test-cache"
    target = cache / f"prelabel-tiny-{_key()}.pt"
    if target.is_file():
        return target
    from ml.train import train

    cache.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            data = _masks_export(Path(tmp))
            result = train("tiny", data, Path(tmp) / "run", epochs=1, steps_per_epoch=80, device="cpu", resume=False)
            partial = target.with_suffix(".partial")
            shutil.copyfile(result["checkpoint"], partial)
            partial.replace(target)
    finally:
        torch.set_num_threads(threads)
    return target


def register_model(name: str, checkpoint: Path, *, active: bool = False, miou: float = 0.5):
    """A ModelVersion with these weights (its val mIoU in ``metrics`` is only informative)."""
    import torch
    from django.core.files import File

    from training.models import ModelVersion

    config = torch.load(checkpoint, map_location="cpu", weights_only=True)["config"]
    version = ModelVersion(name=name, config=config, metrics={"miou": miou}, snapshot_content_hash="test", is_active=active)
    with open(checkpoint, "rb") as handle:
        version.weights.save("model.pt", File(handle), save=False)
    version.save()
    return version
