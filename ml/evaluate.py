"""Evaluation of a trained model on a masks split at the paper's sizes (single images: ``ml.predict``).

Plain PyTorch; never imports Django.

    from ml.evaluate import evaluate
    report = evaluate("runs/1/best.pt", "export/", split="val", sizes=(288, 352, 480))
    report["sizes"][480]["miou"], report["sizes"][480]["ms_per_image"]

Each image is resized so its longer side is the size and both sides are multiples of 32
(``ml.data.eval_size_for``; a 640 x 480 photo at 480 runs at 480 x 352); the prediction is resized back to
the image's own size and compared with its labels there (``ml.metrics``). Speed is the median wall time
of the model's forward pass per image (batch 1, after one warm-up image), by default on the inference
copy of the model (BN folded, channels_last; ``optimize=False`` times the model as given).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ml.checkpoint import load_model
from ml.data import MasksDataset
from ml.device import resolve_device
from ml.metrics import SegmentationMetrics
from ml.models.inference import inference_model

__all__ = ["EVAL_SIZES", "evaluate"]

#: The paper's evaluation sizes (longer side, pixels).
EVAL_SIZES = (288, 352, 480)


def _model(model: nn.Module | str | os.PathLike, device: torch.device) -> tuple[nn.Module, dict]:
    if isinstance(model, nn.Module):
        return model.to(device).eval(), {}
    loaded, meta = load_model(model, device)
    return loaded, meta


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(
    model: nn.Module | str | os.PathLike,
    data_dir: str | os.PathLike,
    split: str = "val",
    sizes: Sequence[int] = EVAL_SIZES,
    *,
    device: str | torch.device = "cpu",
    max_images: int | None = None,
    optimize: bool = True,
    threads: int | None = None,
    on_progress=None,
) -> dict[str, Any]:
    """Accuracy (binary mIoU, nail IoU, per-finger IoU, direction error) and speed (ms per image) of
    ``model`` (a module or a checkpoint path) on ``split`` of the masks export, at each size."""
    device = resolve_device(device)
    net, meta = _model(model, device)
    if optimize:
        net = inference_model(net, channels_last=device.type == "cpu")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        report: dict[str, Any] = {"split": split, "device": str(device), "threads": torch.get_num_threads(),
                                  "optimized": optimize, "sizes": {}}
        if meta:
            report["checkpoint_epoch"] = meta.get("epoch")
        total = len(sizes)
        for si, size in enumerate(sizes):
            dataset = MasksDataset(data_dir, split, train=False, eval_size=size, max_images=max_images)
            metrics = SegmentationMetrics()
            times = []
            for i in range(len(dataset)):
                item = dataset[i]
                image = item["image"][None].to(device)
                if optimize and device.type == "cpu":
                    image = image.contiguous(memory_format=torch.channels_last)
                if i == 0:  # warm-up (allocations, oneDNN primitive creation)
                    net(image)
                _sync(device)
                t0 = time.perf_counter()
                out = net(image)
                _sync(device)
                times.append((time.perf_counter() - t0) * 1000)
                metrics.update_outputs(out, {k: v.to(device) for k, v in item.items() if k != "image"})
                if on_progress:
                    on_progress((si + (i + 1) / max(1, len(dataset))) / total, f"size {size}: image {i + 1}/{len(dataset)}")
            result = metrics.compute()
            result["ms_per_image"] = statistics.median(times) if times else None
            result["ms_mean"] = statistics.fmean(times) if times else None
            report["sizes"][int(size)] = result
        report["images"] = len(dataset) if sizes else 0
        return report
    finally:
        torch.set_num_threads(old_threads)
