"""Losses of the NailSet cascade (Duke et al., CVPRW 2019, Sec. 3.3), plain PyTorch, no Django.

Targets are dicts of tensors at the input resolution (what :mod:`ml.data` yields, batched)::

    fg          N x H x W long   0 background, 1 nail
    cls         N x H x W long   0 background, 1..10 finger class, 255 nail of unknown finger
    field       N x 2 x H x W    unit vector base -> tip inside nails with landmarks, (0, 0) elsewhere
    field_mask  N x H x W bool   pixel carries a field
    ignore      N x H x W bool   pixel is in an ignore region (or crop padding): no loss at all

Terms (each is a mean; a term with no pixel to average over is 0, never NaN, so partial labels are fine):

* :func:`lmp_nll` (fg/bg): Loss Max-Pooling with p = 1 (Rota Bulo et al., CVPR 2017): the per-pixel softmax
  NLL of every non-ignored pixel of the minibatch, sorted; the mean of the top ``k = floor(ratio * N)``
  (at least 1), ratio 0.1. The paper's Eq. 2 with threshold = the k-th largest loss (ties aside).
* :func:`weighted_nll` (fg/bg baseline): NLL with the nail class weighted 20x, normalised by the summed
  weights of the pixels (PyTorch's ``cross_entropy(weight=...)`` mean).
* :func:`class_nll`: NLL of the 10 finger classes averaged over non-ignored ground-truth nail pixels
  with a known class (1..10; 255 is skipped). No LMP (inside nails the classes are balanced).
* :func:`field_l2`: mean over non-ignored pixels with a field of ``||pred - gt||^2`` (squared L2
  distance of the 2-vectors).
* :func:`lovasz_iou` (fg/bg, only when ``iou_weight`` > 0; issue #17): the Lovasz-softmax loss (Berman et al., CVPR
  2018), a convex surrogate of ``1 - IoU`` for the nail and for the background computed over every non-ignored
  pixel of the minibatch, averaged over the two classes: what the binary mIoU scores, trained for directly.
* :func:`distillation_kl` (fg/bg, only when a teacher model is set: ``TrainConfig.teacher``, issue #17): the
  per-pixel KL divergence from the teacher's nail/background softmax to the student's, at temperature T
  (times T^2, Hinton et al. 2015), over the non-ignored pixels, pooled like LMP: the mean of the top
  ``distill_ratio`` of them (1: all). The teacher's logits come in ``targets["teacher_fg"]`` (N x 2 x H x W).

:class:`CascadeLoss` sums ``fg + class_weight * class + field_weight * field`` over the output scales
(``+ iou_weight * lovasz_iou`` on the full-resolution one);
coarse scales (deep supervision) get their labels subsampled by nearest neighbour (``nearest-exact``: the
centre pixel of each block) and are weighted by ``aux_weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dataset.raster import UNKNOWN_CLASS  # 255 (a plain NumPy module, no Django)

__all__ = [
    "UNKNOWN_CLASS",
    "CascadeLoss",
    "LossConfig",
    "class_nll",
    "distillation_kl",
    "downsample_targets",
    "field_l2",
    "lmp_nll",
    "lovasz_iou",
    "weighted_nll",
]



def _zero(like: Tensor) -> Tensor:
    """A zero that keeps the graph (so backward works when a term has no pixel)."""
    return like.sum() * 0.0


def _valid(target: Tensor, ignore: Tensor | None) -> Tensor:
    valid = torch.ones_like(target, dtype=torch.bool)
    if ignore is not None:
        valid &= ~ignore.bool()
    return valid


def _check_ratio(ratio: float) -> None:
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")


def _top_mean(losses: Tensor, ratio: float, like: Tensor) -> Tensor:
    """Loss max-pooling of per-pixel ``losses`` (1-D): the mean of the top ``floor(ratio * n)`` (at least one);
    0 (with ``like``'s graph) when there is none."""
    n = losses.numel()
    if n == 0:
        return _zero(like)
    k = max(1, math.floor(ratio * n))
    return losses.mean() if k >= n else torch.topk(losses, k, sorted=False).values.mean()


def lmp_nll(logits: Tensor, target: Tensor, ignore: Tensor | None = None, ratio: float = 0.1) -> Tensor:
    """Loss Max-Pooling NLL: mean of the top ``floor(ratio * N)`` per-pixel losses (at least one) of the
    ``N`` non-ignored pixels of the whole minibatch. ``logits`` N x C x H x W, ``target`` N x H x W."""
    _check_ratio(ratio)
    losses = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return _top_mean(losses[_valid(target, ignore)], ratio, logits)


def weighted_nll(logits: Tensor, target: Tensor, ignore: Tensor | None = None, nail_weight: float = 20.0) -> Tensor:
    """NLL with class 1 (nail) weighted ``nail_weight`` times class 0: sum(w_i * l_i) / sum(w_i) over the
    non-ignored pixels."""
    losses = F.cross_entropy(logits.float(), target.long(), reduction="none")
    valid = _valid(target, ignore)
    weights = torch.where(target.long() == 1, float(nail_weight), 1.0).to(losses.dtype) * valid
    total = weights.sum()
    if total == 0:
        return _zero(logits)
    return (losses * weights).sum() / total


def class_nll(logits: Tensor, classes: Tensor, ignore: Tensor | None = None) -> Tensor:
    """Finger-class NLL averaged over pixels whose ground-truth class is 1..10 (not background, not
    unknown = 255, not ignored). ``logits`` N x 10 x H x W (logit k-1 = class k)."""
    classes = classes.long()
    known = (classes >= 1) & (classes <= logits.shape[1]) & _valid(classes, ignore)
    if not bool(known.any()):
        return _zero(logits)
    per_pixel = logits.float().permute(0, 2, 3, 1)[known]  # P x 10
    return F.cross_entropy(per_pixel, classes[known] - 1)


def field_l2(pred: Tensor, field: Tensor, field_mask: Tensor, ignore: Tensor | None = None) -> Tensor:
    """Mean squared L2 distance ``||pred - gt||^2`` over pixels with a field (and not ignored).
    ``pred`` and ``field`` N x 2 x H x W, ``field_mask`` N x H x W."""
    mask = field_mask.bool()
    if ignore is not None:
        mask = mask & ~ignore.bool()
    if not bool(mask.any()):
        return _zero(pred)
    diff = (pred.float() - field.float()).permute(0, 2, 3, 1)[mask]  # P x 2
    return diff.pow(2).sum(dim=1).mean()


def distillation_kl(student: Tensor, teacher: Tensor, ignore: Tensor | None = None, ratio: float = 0.1,
                    temperature: float = 1.0) -> Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` per pixel (logits N x C x H x W), over the
    pixels not in ``ignore`` (N x H x W); the mean of the top ``floor(ratio * n)`` of them (at least one), as
    :func:`lmp_nll` pools. 0 where the student's softmax equals the teacher's."""
    _check_ratio(ratio)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    log_s = F.log_softmax(student.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher.float().detach() / temperature, dim=1)
    per_pixel = (log_t.exp() * (log_t - log_s)).sum(dim=1) * temperature**2
    return _top_mean(per_pixel[_valid(per_pixel, ignore)], ratio, student)


def _lovasz_gradient(truth_sorted: Tensor) -> Tensor:
    """The Jaccard loss's gradient along pixels sorted by decreasing error (Berman et al., Alg. 1):
    ``J(k) - J(k - 1)`` with ``J(k) = 1 - IoU`` when the first ``k`` pixels are the errors."""
    total = truth_sorted.sum()
    intersection = total - truth_sorted.cumsum(0)
    union = total + (1.0 - truth_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_iou(logits: Tensor, target: Tensor, ignore: Tensor | None = None) -> Tensor:
    """Lovasz-softmax over the non-ignored pixels of the whole minibatch (``logits`` N x C x H x W, ``target``
    N x H x W in 0..C-1), averaged over the classes present in the target: for each, the pixels' errors
    ``|[target == c] - p_c|`` sorted in decreasing order, dotted with :func:`_lovasz_gradient`. Equals
    ``1 - IoU`` of class c when the probabilities are 0/1, so 0 for a perfect prediction."""
    valid = _valid(target, ignore)
    if not bool(valid.any()):
        return _zero(logits)
    probs = F.softmax(logits.float(), dim=1).permute(0, 2, 3, 1)[valid]  # P x C
    labels = target.long()[valid]
    terms = []
    for c in range(probs.shape[1]):
        truth = (labels == c).to(probs.dtype)
        if not bool(truth.any()):
            continue
        errors = (truth - probs[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        terms.append(torch.dot(errors_sorted, _lovasz_gradient(truth[order])))
    return torch.stack(terms).mean()


_LABEL_KEYS = ("fg", "cls", "field_mask", "ignore")


def downsample_targets(targets: Mapping[str, Tensor], size: tuple[int, int]) -> dict[str, Tensor]:
    """Targets subsampled to ``size`` by nearest neighbour (``nearest-exact``: the pixel nearest to each
    output pixel's centre; label values and unit vectors stay exact)."""
    full = tuple(targets["fg"].shape[-2:])
    if full == tuple(size):
        return dict(targets)
    out = dict(targets)
    for key in _LABEL_KEYS:
        if key in targets and targets[key] is not None:
            t = targets[key]
            small = F.interpolate(t[:, None].to(torch.float32), size=size, mode="nearest-exact")[:, 0]
            out[key] = small.to(t.dtype)
    if targets.get("field") is not None:
        out["field"] = F.interpolate(targets["field"].float(), size=size, mode="nearest-exact")
    return out


@dataclass(frozen=True)
class LossConfig:
    """``fg_loss``: "lmp" (the paper) or "weighted" (the baseline, nail x ``nail_weight``). ``iou_weight``:
    the weight of :func:`lovasz_iou` on the full-resolution nail/background output (0: not computed).
    ``distill_*``: the weight, pooling ratio and temperature of :func:`distillation_kl`, used only with a
    teacher."""

    fg_loss: str = "lmp"
    lmp_ratio: float = 0.1
    nail_weight: float = 20.0
    class_weight: float = 1.0
    field_weight: float = 1.0
    aux_weight: float = 1.0
    iou_weight: float = 0.0
    distill_weight: float = 1.0
    distill_ratio: float = 0.1
    distill_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.fg_loss not in ("lmp", "weighted"):
            raise ValueError(f"fg_loss must be 'lmp' or 'weighted', got {self.fg_loss!r}")
        if not 0 < self.lmp_ratio <= 1:
            raise ValueError(f"lmp_ratio must be in (0, 1], got {self.lmp_ratio}")
        if self.iou_weight < 0:
            raise ValueError(f"iou_weight must be at least 0, got {self.iou_weight}")


class CascadeLoss(torch.nn.Module):
    """Total loss over the output scales (a list of :class:`ml.models.outputs.Outputs`, finest first, or a single
    one): ``sum_s w_s * (fg_s + class_weight * cls_s + field_weight * field_s)`` with ``w = 1`` for the
    full-resolution output and ``aux_weight`` for the others; ``+ iou_weight * lovasz_iou`` of the
    full-resolution nail/background output when ``iou_weight`` > 0; with ``targets["teacher_fg"]`` (a teacher's
    nail/background logits at the input size) ``+ distill_weight * distillation_kl`` on the full-resolution
    output. ``forward`` returns ``(total, parts)``, ``parts`` a dict of detached floats (``fg``, ``cls``,
    ``field`` summed over scales, ``iou`` (0 when its weight is 0), ``distill`` (0 without a teacher), and
    ``total``)."""

    def __init__(self, config: LossConfig | None = None, **overrides) -> None:
        super().__init__()
        config = config or LossConfig()
        if overrides:
            config = LossConfig(**{**config.__dict__, **overrides})
        self.config = config

    def fg_term(self, logits: Tensor, fg: Tensor, ignore: Tensor | None) -> Tensor:
        if self.config.fg_loss == "lmp":
            return lmp_nll(logits, fg, ignore, self.config.lmp_ratio)
        return weighted_nll(logits, fg, ignore, self.config.nail_weight)

    def forward(self, outputs, targets: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        scales: Sequence = outputs if isinstance(outputs, (list, tuple)) and not hasattr(outputs, "_fields") else [outputs]
        c = self.config
        total = None
        terms: list[Tensor] = []
        for i, out in enumerate(scales):
            t = downsample_targets(targets, tuple(out.fg.shape[-2:]))
            ignore = t.get("ignore")
            fg = self.fg_term(out.fg, t["fg"], ignore)
            cls = class_nll(out.cls, t["cls"], ignore)
            field = field_l2(out.field, t["field"], t["field_mask"], ignore)
            weight = 1.0 if i == 0 else c.aux_weight
            term = weight * (fg + c.class_weight * cls + c.field_weight * field)
            total = term if total is None else total + term
            terms.append(torch.stack([fg.detach(), cls.detach(), field.detach()]))
        iou = None
        if c.iou_weight > 0:
            iou = lovasz_iou(scales[0].fg, targets["fg"], targets.get("ignore"))
            total = total + c.iou_weight * iou
        distill = None
        if targets.get("teacher_fg") is not None:
            distill = distillation_kl(scales[0].fg, targets["teacher_fg"], targets.get("ignore"), c.distill_ratio,
                                      c.distill_temperature)
            total = total + c.distill_weight * distill
        fg_sum, cls_sum, field_sum = torch.stack(terms).sum(0).tolist()  # one device sync per step
        parts = {"fg": fg_sum, "cls": cls_sum, "field": field_sum, "iou": 0.0 if iou is None else float(iou.detach()),
                 "distill": 0.0 if distill is None else float(distill.detach()), "total": float(total.detach())}
        return total, parts
