"""Evaluation of a trained model on a masks split at the paper's sizes (single images: ``ml.predict``).

Plain PyTorch; never imports Django.

    from ml.evaluate import evaluate
    report = evaluate("runs/1/best.pt", "export/", split="val", sizes=(288, 352, 480))
    report["sizes"][480]["miou"], report["sizes"][480]["ms_per_image"]

Each image is resized so its longer side is the size and both sides are multiples of 32
(``ml.data.eval_size_for``; a 640 x 480 photo at 480 runs at 480 x 352); the prediction is resized back to
the image's own size and compared with its labels there (``ml.metrics``). Speed is the median wall time
of the model's forward pass per image (batch 1, after one warm-up image), by default on the inference
copy of the model (BN folded, channels_last; ``optimize=False`` times the model as given). ``tta="flip"``
runs the model with horizontal-flip test-time augmentation (``ml.tta``: the image and its mirror, averaged;
timed as a whole).

Per-image scores (cross-validation): :class:`FullResScorer` runs each photo at the model's input size (its longer
side ``long_side``, as :class:`ml.predict.Predictor` runs the platform's models: ``TrainConfig.eval_size``) or at
its own size with the longer side capped at ``max_side`` (:data:`FULL_RES_MAX_SIDE`), and scores it at its own
size (:func:`image_scores`: pixel counts, nail / background / binary IoU, per-nail IoU); :func:`pooled_scores`
sums a split's pixel counts.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ml.checkpoint import load_model
from ml.data import MasksDataset, resize_for_eval, to_tensors
from ml.device import resolve_device
from ml.metrics import SegmentationMetrics, binary_ious, predictions_at
from ml.models.inference import inference_model
from ml.tta import check_tta, with_tta

__all__ = ["EVAL_SIZES", "FULL_RES_MAX_SIDE", "FullResScorer", "evaluate", "image_scores", "nail_breakdown",
           "nail_owners", "pooled_scores"]

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
    tta: str = "none",
    on_progress=None,
) -> dict[str, Any]:
    """Accuracy (binary mIoU, nail IoU, per-finger IoU, direction error) and speed (ms per image) of
    ``model`` (a module or a checkpoint path) on ``split`` of the masks export, at each size, run with the
    test-time augmentation ``tta`` (``ml.tta.TTA_MODES``; unknown names: ValueError)."""
    tta = check_tta(tta)
    device = resolve_device(device)
    net, meta = _model(model, device)
    if optimize:
        net = inference_model(net, channels_last=device.type == "cpu")
    net = with_tta(net, tta)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        report: dict[str, Any] = {"split": split, "device": str(device), "threads": torch.get_num_threads(),
                                  "optimized": optimize, "tta": tta, "sizes": {}}
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


# ----------------------------------------------------------------------------------------------------
# Per-image scores at full resolution (cross-validation, ``ml.cross_validation``)
# ----------------------------------------------------------------------------------------------------

#: Longer side (pixels) the model sees at most in :class:`FullResScorer`; smaller photos run at their own size.
FULL_RES_MAX_SIDE = 640


def nail_owners(instances: np.ndarray) -> np.ndarray:
    """For every pixel, the labelled nail (instance id, 1..n) nearest to it (0 everywhere when the image has
    no nail): the region a predicted pixel is charged to when per-nail IoU is computed."""
    nails = instances > 0
    if not nails.any():
        return np.zeros_like(instances)
    # every nail pixel is a seed with its own label; each pixel gets the label of its nearest seed
    _, labels = cv2.distanceTransformWithLabels((~nails).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    owner_of_label = np.zeros(int(labels.max()) + 1, dtype=instances.dtype)
    owner_of_label[labels[nails]] = instances[nails]
    return owner_of_label[labels]


def image_scores(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray, instances: np.ndarray,
                 owners: np.ndarray | None = None) -> dict[str, Any]:
    """Scores of one image (boolean prediction and labels at the image's own size): pixel counts (``tp``,
    ``fp``, ``fn``, ``tn``: pooled over a split they give the split's IoUs), ``nail_iou``, ``bg_iou``,
    ``miou`` (:func:`ml.metrics.binary_ious`: their mean; the background IoU alone when the image has no nail
    and none is predicted) and
    ``per_nail_iou``: for each labelled nail, the IoU of its mask with the predicted nail pixels nearest to
    it (:func:`nail_owners`), so a nail missed or merged into its neighbour scores low on its own.
    Ignored pixels count nowhere."""
    valid = ~ignore.astype(bool)
    pred, gt = pred.astype(bool) & valid, gt.astype(bool) & valid
    tp, fp, fn = int((pred & gt).sum()), int((pred & ~gt).sum()), int((~pred & gt).sum())
    tn = int(valid.sum()) - tp - fp - fn
    owners = nail_owners(instances) if owners is None else owners
    per_nail = []
    for k in range(1, int(instances.max()) + 1):
        mask = (instances == k) & valid
        if not mask.any():
            continue
        mine = pred & (owners == k)
        per_nail.append(float((mine & mask).sum() / (mine | mask).sum()))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, **binary_ious(tp, fp, fn, tn), "per_nail_iou": per_nail}


def pooled_scores(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A split's figures from its images' :func:`image_scores`: nail, background and binary mIoU from the
    pixel counts summed over the images (:func:`ml.metrics.binary_ious`, as
    :class:`ml.metrics.SegmentationMetrics`), the mean per-image mIoU (over the images that have one: an
    image whose pixels are all ignored has none) and the mean IoU over every labelled nail."""
    nails = [v for s in scores for v in s["per_nail_iou"]]
    image_mious = [s["miou"] for s in scores if s["miou"] is not None]
    return {**binary_ious(*(sum(s[k] for s in scores) for k in ("tp", "fp", "fn", "tn"))),
            "image_miou": statistics.fmean(image_mious) if image_mious else None,
            "per_nail_iou": statistics.fmean(nails) if nails else None, "images": len(scores), "nails": len(nails)}


def nail_breakdown(scores: Sequence[dict[str, Any]], found_at: float = 0.5) -> dict[str, Any]:
    """Where a split's nail IoU is lost, from its images' :func:`image_scores`: ``precision`` and ``recall`` of
    the nail pixels (pooled pixel counts: too much painted / too little), ``found`` (the share of labelled nails
    whose per-nail IoU is at least ``found_at``; ``found_nails`` their number), ``found_iou`` (the mean per-nail IoU
    of those: their outline) and ``nails``. A value with nothing to measure is None."""
    tp, fp, fn = (sum(s[k] for s in scores) for k in ("tp", "fp", "fn"))
    nails = [v for s in scores for v in s["per_nail_iou"]]
    found = [v for v in nails if v >= found_at]
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "found": len(found) / len(nails) if nails else None, "found_nails": len(found),
            "found_iou": statistics.fmean(found) if found else None, "nails": len(nails)}


class FullResScorer:
    """Scores a model on every image of a split, one image at a time: the photo resized so its longer side
    is ``long_side`` (the model's input size, whatever the photo's: what :class:`ml.predict.Predictor` does) or,
    without it, ``min(its own, max_side)`` (sides multiples of 32, :func:`ml.data.eval_size_for`); the
    prediction resized back to the photo's own size and compared there with its labels (:func:`image_scores`).
    The labels are read once, so a scorer can score a model after every epoch cheaply."""

    def __init__(self, data_dir: str | os.PathLike, split: str = "test", *, max_side: int = FULL_RES_MAX_SIDE,
                 long_side: int | None = None, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.max_side = max_side
        self.long_side = long_side
        self.dataset = MasksDataset(data_dir, split, train=False, eval_size=None)
        self.items = []
        for i, entry in enumerate(self.dataset.entries):
            sample = self.dataset.load(i)
            size = long_side or min(max(sample["image"].shape[:2]), max_side)
            image = to_tensors({**sample, "image": resize_for_eval(sample["image"], size)})["image"]
            self.items.append({"file_name": entry["file_name"], "participant": entry.get("participant"),
                               "image": image, "fg": sample["foreground"] > 0, "ignore": sample["ignore"] > 0,
                               "instances": sample["instances"], "owners": nail_owners(sample["instances"]),
                               "input_size": list(image.shape[-2:])})

    def __len__(self) -> int:
        return len(self.items)

    def __call__(self, model: nn.Module) -> list[dict[str, Any]]:
        """Per-image scores (``file_name``, ``participant``, ``input_size`` and :func:`image_scores`)."""
        return self.sweep(model)[0.5]

    @torch.no_grad()
    def sweep(self, model: nn.Module, thresholds: Sequence[float] = (0.5,)) -> dict[float, list[dict[str, Any]]]:
        """``{threshold: per-image scores}``: the nail mask at each nail-probability threshold (0.5: the
        argmax every consumer uses), from one run of the model per image."""
        was_training = model.training
        model.eval()
        try:
            scores: dict[float, list[dict[str, Any]]] = {float(t): [] for t in thresholds}
            for item in self.items:
                outputs = model(item["image"][None].to(self.device))
                final = outputs[0] if isinstance(outputs, list) else outputs  # training mode: final output first
                prob, _, _, _ = predictions_at(final, tuple(item["fg"].shape))
                prob = prob.cpu().numpy()
                for t, rows in scores.items():
                    rows.append({"file_name": item["file_name"], "participant": item["participant"],
                                 "input_size": item["input_size"],
                                 **image_scores(prob > t, item["fg"], item["ignore"], item["instances"],
                                                item["owners"])})
            return scores
        finally:
            model.train(was_training)
