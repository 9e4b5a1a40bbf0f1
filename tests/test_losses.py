"""Tests of ml/losses.py against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from ml.models.outputs import Outputs
from ml.losses import (
    CascadeLoss,
    LossConfig,
    class_nll,
    distillation_kl,
    downsample_targets,
    field_l2,
    lmp_nll,
    lovasz_iou,
    weighted_nll,
)

LN2 = math.log(2.0)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def two_class(diffs, shape=(1, 2, 5)):
    """fg logits (0, d) per pixel: the NLL is softplus(-d) for a nail, softplus(d) for background."""
    d = torch.tensor(diffs, dtype=torch.float32).reshape(shape)
    return torch.stack([torch.zeros_like(d), d], dim=1)


def test_lmp_hand_values():
    # 10 pixels, all nail (target 1), logit differences d -> losses softplus(-d)
    diffs = [4.0, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0, 5.0]
    logits = two_class(diffs)
    target = torch.ones(1, 2, 5, dtype=torch.long)
    losses = sorted((softplus(-d) for d in diffs), reverse=True)
    # ratio 0.1: k = floor(0.1 * 10) = 1: the largest loss, softplus(4) = 4.01815
    assert lmp_nll(logits, target).item() == pytest.approx(losses[0], abs=1e-5)
    assert losses[0] == pytest.approx(4.018150, abs=1e-6)
    # ratio 0.3: k = 3: mean of softplus(4), softplus(3), softplus(2)
    assert lmp_nll(logits, target, ratio=0.3).item() == pytest.approx((4.018150 + 3.048587 + 2.126928) / 3, abs=1e-5)
    # ratio 1.0: the plain mean
    assert lmp_nll(logits, target, ratio=1.0).item() == pytest.approx(sum(losses) / 10, abs=1e-5)
    # k = floor(0.25 * 10) = 2
    assert lmp_nll(logits, target, ratio=0.25).item() == pytest.approx((losses[0] + losses[1]) / 2, abs=1e-5)


def test_lmp_pools_over_the_whole_minibatch_and_skips_ignored_pixels():
    # two images of 5 pixels; the worst losses are both in image 0, one of them ignored
    logits = two_class([[-6.0, -5.0, 0.0, 1.0, 2.0], [3.0, 3.0, 3.0, 3.0, 3.0]], shape=(2, 1, 5))
    target = torch.ones(2, 1, 5, dtype=torch.long)
    ignore = torch.zeros(2, 1, 5, dtype=torch.bool)
    ignore[0, 0, 0] = True
    # N = 9 valid pixels, k = max(1, floor(0.2 * 9)) = 1 -> softplus(5) (the ignored softplus(6) is skipped)
    assert lmp_nll(logits, target, ignore, ratio=0.2).item() == pytest.approx(softplus(5.0), abs=1e-5)
    # k = floor(0.4 * 9) = 3 -> softplus(5), softplus(0), softplus(-1)
    expected = (softplus(5.0) + LN2 + softplus(-1.0)) / 3
    assert lmp_nll(logits, target, ignore, ratio=0.4).item() == pytest.approx(expected, abs=1e-5)
    # fewer than 10 pixels still pool at least one
    assert lmp_nll(logits[:1, :, :, :2], target[:1, :, :2]).item() == pytest.approx(softplus(6.0), abs=1e-5)


def test_lmp_everything_ignored_is_zero_with_a_gradient():
    logits = two_class([0.0] * 10).requires_grad_(True)
    target = torch.ones(1, 2, 5, dtype=torch.long)
    loss = lmp_nll(logits, target, torch.ones(1, 2, 5, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError):
        lmp_nll(logits, target, ratio=0.0)


def test_weighted_nll_hand_value():
    # pixel 0: nail with d = 1 (loss softplus(-1)); pixel 1: background with d = 2 (loss softplus(2));
    # pixel 2: ignored nail
    logits = two_class([1.0, 2.0, -9.0], shape=(1, 1, 3))
    target = torch.tensor([[[1, 0, 1]]])
    ignore = torch.tensor([[[False, False, True]]])
    expected = (20 * softplus(-1.0) + softplus(2.0)) / 21
    assert weighted_nll(logits, target, ignore).item() == pytest.approx(expected, abs=1e-5)
    assert weighted_nll(logits, target, ignore, nail_weight=1.0).item() == pytest.approx(
        (softplus(-1.0) + softplus(2.0)) / 2, abs=1e-5)
    assert weighted_nll(logits, target, torch.ones_like(ignore)).item() == 0.0


def test_class_nll_inside_known_nails_only():
    # 10 class logits; pixel classes: background 0, unknown 255, class 3 (logit 2 at index 2), class 7
    logits = torch.zeros(1, 10, 1, 5)
    logits[0, 2, 0, 2] = 2.0  # pixel 2: true class 3 gets logit 2 -> -log(e^2 / (e^2 + 9))
    logits[0, 0, 0, 3] = 1.0  # pixel 3: true class 7 (index 6) has logit 0, class 1 has 1 -> log(e + 9)
    logits[0, :, 0, 4] = 50.0  # pixel 4: ignored
    classes = torch.tensor([[[0, 255, 3, 7, 5]]])
    ignore = torch.tensor([[[False, False, False, False, True]]])
    expected = (-(2.0 - math.log(math.exp(2.0) + 9)) + math.log(math.e + 9)) / 2
    assert class_nll(logits, classes, ignore).item() == pytest.approx(expected, abs=1e-5)
    # no known class: 0 (and a gradient of zeros), never NaN
    x = logits.clone().requires_grad_(True)
    loss = class_nll(x, torch.tensor([[[0, 255, 255, 0, 0]]]))
    assert loss.item() == 0.0
    loss.backward()
    assert not torch.isnan(x.grad).any()


def test_field_l2_hand_value():
    pred = torch.tensor([[[[0.0, 1.0, 0.5, 9.0]], [[0.0, 1.0, 0.0, 9.0]]]])  # 1 x 2 x 1 x 4: (x, y) per pixel
    gt = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]], [[0.0, 1.0, 0.0, 1.0]]]])
    mask = torch.tensor([[[True, True, True, False]]])
    # |(0,0)-(1,0)|^2 = 1, |(1,1)-(0,1)|^2 = 1, |(0.5,0)-(1,0)|^2 = 0.25; pixel 3 has no field
    assert field_l2(pred, gt, mask).item() == pytest.approx((1 + 1 + 0.25) / 3, abs=1e-6)
    ignore = torch.tensor([[[True, False, False, False]]])
    assert field_l2(pred, gt, mask, ignore).item() == pytest.approx(1.25 / 2, abs=1e-6)
    assert field_l2(pred, gt, torch.zeros_like(mask)).item() == 0.0


def _targets(n=1, h=8, w=8):
    fg = torch.zeros(n, h, w, dtype=torch.long)
    fg[:, 2:7, 2:7] = 1
    cls = torch.where(fg > 0, 3, 0)
    field = torch.zeros(n, 2, h, w)
    field[:, 1][fg > 0] = -1.0  # pointing up
    return {"fg": fg, "cls": cls, "field": field, "field_mask": fg > 0, "ignore": torch.zeros(n, h, w, dtype=torch.bool)}


def test_downsample_targets_is_centre_nearest_neighbour():
    t = _targets()
    t["cls"] = torch.arange(64).reshape(1, 8, 8)
    small = downsample_targets(t, (2, 2))
    # 8 -> 2: output pixel i samples input pixel floor((i + 0.5) * 4) = 2, 6
    assert small["cls"].tolist() == [[[18, 22], [50, 54]]]
    assert small["fg"].tolist() == [[[1, 1], [1, 1]]]
    assert small["field"][0, 1].tolist() == [[-1.0, -1.0], [-1.0, -1.0]]
    assert small["cls"].dtype == torch.int64 and small["field_mask"].dtype == torch.bool


def _random_outputs(seed: int) -> tuple[Outputs, Outputs]:
    """Random outputs of one 8 x 8 image: the full-resolution one and a 2 x 2 deep-supervision one."""
    g = torch.Generator().manual_seed(seed)
    return tuple(Outputs(torch.randn(1, 2, n, n, generator=g), torch.randn(1, 10, n, n, generator=g),
                         torch.randn(1, 2, n, n, generator=g)) for n in (8, 2))


def test_cascade_loss_sums_scales_with_downsampled_labels():
    t = _targets()
    full, coarse = _random_outputs(0)
    loss = CascadeLoss(LossConfig(aux_weight=0.5, class_weight=2.0, field_weight=3.0))
    total, parts = loss([full, coarse], t)
    s = downsample_targets(t, (2, 2))

    def terms(out, tt):
        return (lmp_nll(out.fg, tt["fg"], tt["ignore"]), class_nll(out.cls, tt["cls"], tt["ignore"]),
                field_l2(out.field, tt["field"], tt["field_mask"], tt["ignore"]))

    a, b = terms(full, t), terms(coarse, s)
    expected = (a[0] + 2 * a[1] + 3 * a[2]) + 0.5 * (b[0] + 2 * b[1] + 3 * b[2])
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["fg"] == pytest.approx((a[0] + b[0]).item(), rel=1e-6)
    assert parts["total"] == pytest.approx(total.item())
    # a single Outputs is one scale; the weighted baseline swaps the fg term
    single, _ = CascadeLoss(fg_loss="weighted")(full, t)
    assert single.item() == pytest.approx((weighted_nll(full.fg, t["fg"], t["ignore"]) + a[1] + a[2]).item(), rel=1e-6)


def test_partial_labels_give_zero_terms_not_nan():
    t = _targets(n=2)
    t["cls"] = torch.where(t["fg"] > 0, 255, 0)  # nails of unknown finger
    t["field"].zero_()
    t["field_mask"] = torch.zeros_like(t["field_mask"])
    out = Outputs(torch.randn(2, 2, 8, 8, requires_grad=True), torch.randn(2, 10, 8, 8, requires_grad=True),
                  torch.randn(2, 2, 8, 8, requires_grad=True))
    total, parts = CascadeLoss()([out], t)
    assert parts["cls"] == 0.0 and parts["field"] == 0.0 and math.isfinite(parts["fg"]) and parts["fg"] > 0
    total.backward()
    assert torch.equal(out.cls.grad, torch.zeros_like(out.cls)) and torch.equal(out.field.grad, torch.zeros_like(out.field))
    assert not torch.isnan(out.fg.grad).any()
    # no nail at all anywhere: still finite
    empty = {k: torch.zeros_like(v) for k, v in t.items()}
    total, parts = CascadeLoss()([out], empty)
    assert math.isfinite(total.item())


def test_distillation_kl_hand_values_pooling_and_gradient():
    # one pixel, teacher logits (0, a), student (0, b): KL of Bernoulli(sigmoid(a)) from Bernoulli(sigmoid(b))
    def kl(a, b):
        p, q = 1 / (1 + math.exp(-a)), 1 / (1 + math.exp(-b))
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    teacher = two_class([2.0, -1.0, 0.5, 3.0, -2.0], shape=(1, 1, 5))
    student = two_class([0.0, -1.0, 1.5, -3.0, -2.0], shape=(1, 1, 5)).requires_grad_(True)
    each = [kl(a, b) for a, b in zip([2.0, -1.0, 0.5, 3.0, -2.0], [0.0, -1.0, 1.5, -3.0, -2.0])]
    assert distillation_kl(student, teacher, ratio=1.0).item() == pytest.approx(sum(each) / 5, abs=1e-6)
    assert distillation_kl(student, teacher, ratio=0.4).item() == pytest.approx(  # k = 2: the two largest
        sum(sorted(each, reverse=True)[:2]) / 2, abs=1e-6)
    assert distillation_kl(teacher, teacher, ratio=1.0).item() == pytest.approx(0.0, abs=1e-7)
    ignore = torch.tensor([[[False, False, False, True, False]]])  # the worst pixel left out
    assert distillation_kl(student, teacher, ignore, ratio=0.2).item() == pytest.approx(sorted(each)[-2], abs=1e-6)
    t2 = distillation_kl(student, teacher, ratio=1.0, temperature=2.0).item()
    assert t2 == pytest.approx(4 * sum(kl(a / 2, b / 2) for a, b in zip([2.0, -1.0, 0.5, 3.0, -2.0],
                                                                     [0.0, -1.0, 1.5, -3.0, -2.0])) / 5, abs=1e-6)
    teacher.requires_grad_(True)
    distillation_kl(student, teacher, ratio=1.0).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0  # only the student learns
    assert distillation_kl(student, teacher, torch.ones(1, 1, 5, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError):
        distillation_kl(student, teacher, temperature=0)


def test_cascade_loss_adds_the_teachers_term_on_the_final_output_only():
    t = _targets()
    full, coarse = _random_outputs(1)
    g = torch.Generator().manual_seed(2)
    loss = CascadeLoss(LossConfig(distill_weight=3.0, distill_ratio=0.5))
    plain, plain_parts = loss([full, coarse], t)
    assert plain_parts["distill"] == 0.0
    teacher = torch.randn(1, 2, 8, 8, generator=g)
    taught, parts = loss([full, coarse], {**t, "teacher_fg": teacher})
    expected = distillation_kl(full.fg, teacher, t["ignore"], ratio=0.5)
    assert parts["distill"] == pytest.approx(expected.item(), rel=1e-6) and expected.item() > 0
    assert taught.item() == pytest.approx(plain.item() + 3.0 * expected.item(), rel=1e-6)
    assert parts["fg"] == pytest.approx(plain_parts["fg"])


def test_lovasz_iou_hand_value_of_soft_probabilities():
    """Two pixels: a nail at p(nail) 0.7 and background at p(nail) 0.4. Nail class: errors 0.4 (background
    pixel, first) and 0.3; Jaccard after the first error 1 - 1/2, after both 1 - 0/2: gradient (0.5, 0.5), loss
    0.35. Background class: errors 0.4 (its pixel, first) and 0.3; Jaccard 1 - 0/1 then 1 - 0/2: gradient
    (1, 0), loss 0.4. Mean 0.375."""
    p = torch.tensor([0.7, 0.4])
    logits = torch.stack([torch.zeros(2), torch.log(p / (1 - p))]).reshape(1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    assert lovasz_iou(logits, target).item() == pytest.approx(0.375, abs=1e-6)


def test_lovasz_iou_of_a_hard_prediction_is_one_minus_the_iou():
    """0/1 probabilities: the loss is 1 - IoU per class present, averaged (what the binary mIoU scores), and 0
    for a perfect prediction; ignored pixels count for nothing, all ignored is 0 with a gradient."""
    truth = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]).reshape(1, 2, 5)
    painted = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0, 0, 0]).reshape(1, 2, 5)
    logits = two_class(((painted * 2 - 1) * 30).flatten().tolist())
    nail_iou, bg_iou = 3 / 6, 4 / 7
    assert lovasz_iou(logits, truth).item() == pytest.approx(1 - (nail_iou + bg_iou) / 2, abs=1e-5)
    assert lovasz_iou(two_class(((truth * 2 - 1) * 30).flatten().tolist()), truth).item() == pytest.approx(0.0, abs=1e-6)
    ignore = torch.zeros_like(truth, dtype=torch.bool)
    ignore[0, 0, 4] = ignore[0, 1, 0] = True  # the two background pixels painted as nail: no longer wrong
    assert lovasz_iou(logits, truth, ignore).item() == pytest.approx(1 - (3 / 4 + 4 / 5) / 2, abs=1e-5)
    everything = two_class(torch.zeros(10).tolist()).requires_grad_()
    zero = lovasz_iou(everything, truth, torch.ones_like(ignore))
    zero.backward()
    assert zero.item() == 0.0 and everything.grad is not None
    only_background = lovasz_iou(logits, torch.zeros_like(truth))  # no nail in the batch: the background's term
    assert only_background.item() == pytest.approx(1 - 5 / 10, abs=1e-5)


def test_cascade_loss_adds_the_iou_term_on_the_final_output_only():
    t = _targets()
    full, coarse = _random_outputs(1)
    plain, plain_parts = CascadeLoss()([full, coarse], t)
    total, parts = CascadeLoss(iou_weight=0.5)([full, coarse], t)
    iou = lovasz_iou(full.fg, t["fg"], t["ignore"])
    assert total.item() == pytest.approx(plain.item() + 0.5 * iou.item(), rel=1e-6)
    assert parts["iou"] == pytest.approx(iou.item()) and plain_parts["iou"] == 0.0 and iou.item() > 0
    with pytest.raises(ValueError, match="iou_weight"):
        LossConfig(iou_weight=-1.0)
