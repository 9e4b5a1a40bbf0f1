"""The entry point of every export: :func:`export_model` checks the output folder, copies the model, gathers
the parity photos, hands an :class:`~ml.export.registry.ExportRequest` to the registered format, writes
``nailset-export.json`` and judges parity. Importing this module registers every format of
:data:`~ml.export.registry.EXPORT_FORMATS`.
"""
from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from . import coreml, onnx, tfjs_driver  # noqa: F401 - each registers its format
from .files import folder_size, write_json
from .photos import Photo, parity_photos
from .registry import ExportRequest, get_export_format
from .spec import METADATA_FILE, ExportError, Log, Progress, noop

__all__ = ["export_model"]


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
    "float16" or "uint8". ``photos``: the parity photos (default :func:`ml.export.photos.parity_photos`).
    ``browser``: run the TF.js artifact in headless Chromium for its parity report (default: when Playwright
    and Chromium are there); ``browser_repeats``: timed runs per input size and backend (after the checked
    one). Raises :class:`ExportError` for an unknown format, when the export fails, or (``strict``, the
    default) when its parity misses the goal: an artifact that differs from the trained model is worse than
    none."""
    export_format = get_export_format(fmt)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    photos = list(photos) if photos is not None else parity_photos(count=parity_count)
    started = time.perf_counter()
    progress = on_progress or noop
    request = ExportRequest(model, fmt, out, photos, meta=meta, model_version=model_version,
                            snapshot_content_hash=snapshot_content_hash, precision=precision, size=size,
                            quantize=quantize, parity_long_side=parity_long_side, browser=browser, backends=backends,
                            browser_repeats=browser_repeats, progress=progress, log=log or noop)
    metadata, report, files = export_format.run(request)
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
