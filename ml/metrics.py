"""Accuracy metrics of nail segmentation, accumulated over a dataset (plain PyTorch, no Django).

* binary mIoU (the paper's figure): the mean of the nail IoU and the background IoU, each computed from
  pixel counts summed over the whole split (not averaged per image); ignored pixels are skipped.
  :func:`binary_ious` is the one rule, used here and by ``ml.evaluate``'s per-image and pooled scores: a class
  that is neither labelled nor predicted (no nail anywhere and none predicted) has no IoU (None) and is left
  out of the mean, so such an image or split scores its background IoU alone (1.0: nothing missed, nothing
  invented), not None and not a mean with a 0.
* per-finger IoU, classes 1..10, over the images whose ground truth has finger classes, skipping pixels
  of unknown finger (255); a pixel's predicted class is 0 where the fg/bg head says background, else
  the argmax of the class head + 1. ``finger_miou`` averages the classes present in the ground truth.
* direction error: mean angle in degrees between the predicted and the ground-truth direction vectors
  over the pixels that carry a ground-truth field (a zero prediction counts as 90 degrees).

Metrics that have nothing to measure (no classes, no landmarks) are None.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ml.models.outputs import Outputs

__all__ = ["SegmentationMetrics", "binary_ious", "predictions_at"]

NUM_FINGERS = 10


def binary_ious(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | None]:
    """``nail_iou``, ``bg_iou`` and ``miou`` from pixel counts (true / false positives and negatives of the
    nail class, ignored pixels already left out). An IoU whose class is in neither the labels nor the
    prediction (its union is empty) is None; ``miou`` is the mean of the IoUs that are not None, so with no
    nail labelled and none predicted it is the background IoU alone, and it is None only without pixels."""
    nail = tp / (tp + fp + fn) if tp + fp + fn else None
    bg = tn / (tn + fp + fn) if tn + fp + fn else None
    present = [iou for iou in (nail, bg) if iou is not None]
    return {"nail_iou": nail, "bg_iou": bg, "miou": sum(present) / len(present) if present else None}


def predictions_at(outputs: Outputs, size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Predictions of one image's final outputs (batch of 1 or unbatched maps) resized to ``size``:
    (nail probability H x W, fg mask bool, class map int64 0..10, field 2 x H x W). The nail probability
    and the field are resized bilinearly, the class argmax by nearest neighbour."""
    fg, cls, field = (t if t.dim() == 4 else t[None] for t in outputs)
    fg, cls, field = fg[:1].float(), cls[:1].float(), field[:1].float()
    diff = fg[:, 1:2] - fg[:, 0:1]  # softmax of 2 logits = sigmoid of their difference
    same = tuple(fg.shape[-2:]) == tuple(size)
    if not same:
        diff = F.interpolate(diff, size=size, mode="bilinear", align_corners=False)
        field = F.interpolate(field, size=size, mode="bilinear", align_corners=False)
    prob = torch.sigmoid(diff)[0, 0]
    finger = cls.argmax(1, keepdim=True).float() + 1
    if not same:
        finger = F.interpolate(finger, size=size, mode="nearest-exact")
    mask = prob > 0.5
    classes = torch.where(mask, finger[0, 0].long(), torch.zeros((), dtype=torch.long, device=mask.device))
    return prob, mask, classes, field[0]


class SegmentationMetrics:
    """Accumulates per-pixel counts; :meth:`compute` returns the metric dict."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.tn = 0
        self.inter = torch.zeros(NUM_FINGERS + 1, dtype=torch.float64)
        self.union = torch.zeros(NUM_FINGERS + 1, dtype=torch.float64)
        self.gt_pixels = torch.zeros(NUM_FINGERS + 1, dtype=torch.float64)
        self.class_images = 0
        self.angle_sum = 0.0
        self.angle_pixels = 0
        self.images = 0

    @torch.no_grad()
    def update(self, pred_fg: Tensor, gt_fg: Tensor, ignore: Tensor | None = None, pred_cls: Tensor | None = None,
               gt_cls: Tensor | None = None, pred_field: Tensor | None = None, gt_field: Tensor | None = None,
               field_mask: Tensor | None = None) -> None:
        """Add images (any matching shapes: H x W or N x H x W; fields with a channel dim of 2 before
        H x W). ``pred_fg`` bool/0-1, ``gt_fg`` 0/1; classes 0..10 (ground truth also 255)."""
        pred = pred_fg.bool()
        gt = gt_fg.bool()
        valid = torch.ones_like(gt) if ignore is None else ~ignore.bool()
        self.images += 1 if gt.dim() == 2 else gt.shape[0]
        self.tp += int((pred & gt & valid).sum())
        self.fp += int((pred & ~gt & valid).sum())
        self.fn += int((~pred & gt & valid).sum())
        self.tn += int((~pred & ~gt & valid).sum())
        if pred_cls is not None and gt_cls is not None:
            gt_c = gt_cls.long()
            known = (gt_c >= 1) & (gt_c <= NUM_FINGERS)
            if bool((known & valid).any()):  # only images whose ground truth has finger classes
                self.class_images += 1
                use = valid & (gt_c != 255)
                p = pred_cls.long()[use].clamp(0, NUM_FINGERS).cpu()
                g = gt_c[use].cpu()
                n = NUM_FINGERS + 1
                confusion = torch.bincount(g * n + p, minlength=n * n).reshape(n, n).double()
                inter = confusion.diag()
                self.inter += inter
                self.union += confusion.sum(0) + confusion.sum(1) - inter
                self.gt_pixels += confusion.sum(1)
        if pred_field is not None and gt_field is not None and field_mask is not None:
            mask = field_mask.bool() & valid
            if bool(mask.any()):
                pf = torch.movedim(pred_field.float(), -3, -1)[mask]  # P x 2
                gf = torch.movedim(gt_field.float(), -3, -1)[mask]
                cos = (pf * gf).sum(-1) / (pf.norm(dim=-1) * gf.norm(dim=-1)).clamp_min(1e-12)
                self.angle_sum += float(torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0))).double().sum())
                self.angle_pixels += int(mask.sum())

    @torch.no_grad()
    def update_outputs(self, outputs: Outputs, targets: dict) -> None:
        """Add one image from the model's final outputs and its (unbatched or batch-of-1) targets, the
        prediction resized to the targets' size."""
        gt_fg = targets["fg"]
        gt_fg = gt_fg[0] if gt_fg.dim() == 3 else gt_fg
        squeeze = (lambda t: t[0] if t is not None and t.dim() == gt_fg.dim() + 1 else t)
        size = tuple(gt_fg.shape[-2:])
        _, mask, classes, field = predictions_at(outputs, size)
        gt_field = targets.get("field")
        if gt_field is not None and gt_field.dim() == 4:
            gt_field = gt_field[0]
        self.update(mask, gt_fg, squeeze(targets.get("ignore")), classes, squeeze(targets.get("cls")), field,
                    gt_field, squeeze(targets.get("field_mask")))

    def compute(self) -> dict:
        def ratio(a, b):
            return a / b if b else None

        ious = binary_ious(self.tp, self.fp, self.fn, self.tn)
        per_finger = {}
        for k in range(1, NUM_FINGERS + 1):
            if self.gt_pixels[k] > 0:
                per_finger[str(k)] = float(self.inter[k] / self.union[k])
        finger_miou = sum(per_finger.values()) / len(per_finger) if per_finger else None
        total = self.tp + self.fp + self.fn + self.tn
        return {
            **ious,
            "pixel_accuracy": ratio(self.tp + self.tn, total),
            "finger_iou": per_finger or None,
            "finger_miou": finger_miou,
            "direction_error_deg": ratio(self.angle_sum, self.angle_pixels),
            "images": self.images,
            "class_images": self.class_images,
            "field_pixels": self.angle_pixels,
        }
