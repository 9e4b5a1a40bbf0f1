"""What every export shares: the exported module, parity photos and inputs, and :func:`export_model`.

The exported function (all formats)::

    image      RGB in [0, 1] (Core ML: an RGB image, 0..255, scaled by 1/255 inside); H and W multiples of 32
    fg_prob    nail probability, softmax of the fg/bg logits (= sigmoid(logit_nail - logit_background))
    class_prob finger-class probabilities, softmax over the 10 classes (channel k-1 = finger class k)
    field      the direction field (x right, y down), as the model predicts it

The model's input normalisation (the pretrained source's mean/std) runs inside the exported graph.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

FORMATS = ("onnx", "coreml", "tfjs")
INPUT_NAME = "image"
OUTPUT_NAMES = ("fg_prob", "class_prob", "field")
#: H and W of every input must be multiples of this (five stride-2 stages on the half-size low branch).
SIZE_MULTIPLE = 32
METADATA_FILE = "nailset-export.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Where the parity photos come from unless told otherwise (real photos; see ../shared/data/README.md).
PHOTOS_ENV = "NAILSET_PARITY_PHOTOS"
DEFAULT_PHOTOS_DIR = PROJECT_ROOT.parent / "shared" / "data" / "nails-cc0" / "images"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class ExportError(RuntimeError):
    """An export that cannot be made or cannot be trusted; the message says why."""


Progress = Callable[[float, str], None]
Log = Callable[[str], None]


def _noop(*_args, **_kwargs) -> None:
    return None


# ----------------------------------------------------------------------------------------------------
# The exported module
# ----------------------------------------------------------------------------------------------------


class ExportModule(nn.Module):
    """``image`` N x 3 x H x W RGB in [0, 1] -> ``(fg_prob N x 1 x H x W, class_prob N x C x H x W,
    field N x 2 x H x W)``.

    ``fold=True`` (what is exported): :func:`ml.models.inference.inference_model` of the model (eval, BN folded,
    TF "SAME" pads merged into their convs; exact). ``fold=False``: the model as trained, in eval mode:
    the PyTorch reference every artifact is compared with."""

    def __init__(self, model: nn.Module, fold: bool = True) -> None:
        super().__init__()
        if fold:
            from ml.models.inference import inference_model

            inner = inference_model(model, channels_last=False)
        else:
            inner = copy.deepcopy(model).eval()
            for p in inner.parameters():
                p.requires_grad_(False)
        self.model = inner.eval()
        self.eval()

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(image)
        if isinstance(out, (list, tuple)) and not hasattr(out, "fg"):
            out = out[0]
        fg_prob = torch.sigmoid(out.fg[:, 1:2] - out.fg[:, 0:1])
        class_prob = torch.softmax(out.cls, dim=1)
        return fg_prob, class_prob, out.field


@torch.no_grad()
def reference_outputs(model: nn.Module, inputs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """PyTorch's outputs (float32, NCHW) of the model as trained for each input (1 x 3 x H x W in [0, 1])."""
    module = ExportModule(model, fold=False)
    results = []
    for x in inputs:
        outs = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        results.append({name: t.float().numpy() for name, t in zip(OUTPUT_NAMES, outs)})
    return results


# ----------------------------------------------------------------------------------------------------
# Parity photos and inputs
# ----------------------------------------------------------------------------------------------------


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


def check_size(height: int, width: int) -> tuple[int, int]:
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ExportError(f"input size {height}x{width}: height and width must be positive multiples of {SIZE_MULTIPLE}")
    return int(height), int(width)


def parse_size(value: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"352x480"`` / ``(352, 480)`` -> (h, w), checked; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            h, w = (int(v) for v in value.lower().split("x"))
        except ValueError:
            raise ExportError(f"size must read HEIGHTxWIDTH, e.g. 352x480, not {value!r}") from None
    else:
        h, w = (int(v) for v in value)
    return check_size(h, w)


def prepare_input(photo: Photo, size: tuple[int, int] | int) -> np.ndarray:
    """A photo as a 1 x 3 x H x W float32 input in [0, 1]: exactly (h, w) for a fixed-size artifact, or the
    evaluation's resize (longer side ``size``, both sides multiples of 32) for a dynamic one."""
    import cv2

    from ml.data import resize_for_eval

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
    from ml.data import eval_size_for

    return eval_size_for(3, 4, default_long_side(meta))


def median_ms(func: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append((time.perf_counter() - t0) * 1000)
    return round(float(np.median(times)), 2)


def folder_size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json(path: Path, data: Any) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ----------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------


def export_model(
    model: nn.Module,
    fmt: str,
    out_dir: str | os.PathLike,
    *,
    meta: dict | None = None,
    model_version: str | None = None,
    snapshot_content_hash: str | None = None,
    precision: str | None = None,
    size: str | Sequence[int] | None = None,
    quantize: str | None = None,
    photos: Sequence[Photo] | None = None,
    parity_count: int = 3,
    parity_long_side: int | None = None,
    browser: bool | None = None,
    backends: Sequence[str] = ("cpu", "webgl"),
    browser_repeats: int = 1,
    strict: bool = True,
    on_progress: Progress | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Export ``model`` (a trained model in any mode; it is not changed) as ``fmt`` into the empty or new
    folder ``out_dir`` and prove its parity with PyTorch. Returns the document written to
    ``out_dir/nailset-export.json``: ``{"metadata": ..., "parity": ..., "files": [...], "size_bytes"}``.

    ``precision``: Core ML "fp16" (default) or "fp32". ``size``: Core ML's fixed input size "HxW" (default:
    landscape 3:4 at the checkpoint's evaluation size). ``quantize``: TF.js weight quantisation None,
    "float16" or "uint8". ``photos``: the parity photos (default :func:`parity_photos`). ``browser``: run the
    TF.js artifact in headless Chromium for its parity report (default: when Playwright and Chromium are
    there); ``browser_repeats``: timed runs per input size and backend (after the checked one). Raises :class:`ExportError` when the export fails, or (``strict``, the default) when its parity
    misses the goal: an artifact that differs from the trained model is worse than none."""
    from . import metadata as md
    from . import parity as par

    progress = on_progress or _noop
    log = log or _noop
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    photos = list(photos) if photos is not None else parity_photos(count=parity_count)
    started = time.perf_counter()

    def metadata_for(info: dict) -> dict:
        return md.build_metadata(model, fmt, meta=meta, model_version=model_version,
                                 snapshot_content_hash=snapshot_content_hash, info=info)

    if fmt == "onnx":
        from .onnx import embed_metadata, export_onnx, onnx_parity

        long_side = parity_long_side or default_long_side(meta)
        progress(0.1, "exporting ONNX")
        info = export_onnx(model, out / "model.onnx", sample_size=_sample_size(long_side))
        metadata = metadata_for(info)
        embed_metadata(out / "model.onnx", metadata)
        progress(0.5, "checking parity with onnxruntime")
        inputs = [prepare_input(p, long_side) for p in photos]
        report = onnx_parity(out / "model.onnx", inputs, reference_outputs(model, inputs), photos)
        files = ["model.onnx"]
    elif fmt == "coreml":
        from .coreml import coreml_parity, export_coreml

        precision = precision or "fp16"
        fixed = parse_size(size) or default_fixed_size(meta)
        package = out / "model.mlpackage"
        progress(0.1, f"converting to Core ML ({precision}, {fixed[0]}x{fixed[1]})")
        info = export_coreml(model, package, size=fixed, precision=precision,
                             description=md.short_description(model_version, meta),
                             metadata=metadata_for({"input_size": list(fixed), "precision": precision}))
        metadata = metadata_for(info)
        progress(0.6, "checking parity: the ML program run op by op with PyTorch kernels")
        inputs = [prepare_input(p, fixed) for p in photos]
        report = coreml_parity(package, inputs, reference_outputs(model, inputs), photos, precision)
        files = ["model.mlpackage"]
    else:
        from .tfjs_driver import export_tfjs

        long_side = parity_long_side or default_long_side(meta, cap=320)
        inputs = [prepare_input(p, long_side) for p in photos]
        info, report = export_tfjs(model, out, inputs, reference_outputs(model, inputs), photos,
                                   quantize=quantize, browser=browser, backends=backends, repeats=browser_repeats,
                                   sample_size=_sample_size(long_side), progress=progress, log=log)
        metadata = metadata_for(info)
        files = sorted(p.name for p in out.iterdir() if p.name != par.REFERENCE_DIR)
    report["export_seconds"] = round(time.perf_counter() - started, 1)
    document = {"metadata": metadata, "parity": report, "files": files,
                "size_bytes": sum(folder_size(out / f) for f in files)}
    report["size_bytes"] = document["size_bytes"]
    write_json(out / METADATA_FILE, document)
    progress(1.0, f"{fmt}: max abs diff {report['max_abs_diff']:.2e} (goal {report['goal']:.0e})")
    if strict and not report["passed"]:
        raise ExportError(f"{fmt} parity missed its goal: max abs diff {report['max_abs_diff']:.3e} >= {report['goal']:.0e} "
                          f"({json.dumps(report.get('outputs'))})")
    return document


def _sample_size(long_side: int) -> tuple[int, int]:
    from ml.data import eval_size_for

    return eval_size_for(3, 4, long_side)


def temp_dir(prefix: str = "nailset-export-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
