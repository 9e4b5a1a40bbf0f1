"""Test-time augmentation (issue #17): a model run on the image and on its mirror, the mirror's outputs mirrored
back and averaged. Plain PyTorch; never imports Django.

    from ml.tta import with_tta
    net = with_tta(model, "flip")          # "none": the model itself
    out = net(images)                      # ml.models.outputs.Outputs, as the model's own in eval mode

``"flip"`` (:class:`FlipTTA`): the network sees the image and its left-right mirror (a batch of 2, or two
runs with ``batched=False``). The mirror's outputs are mirrored back (:func:`mirror_outputs`): every map
flipped along x, the finger classes 1-5 (left hand) <-> 6-10 (right hand) swapped with the mapping the
training's flip augmentation uses (``ml.data.FINGER_FLIP``, one place), the direction field's x component
negated. The nail and finger-class *probabilities* are averaged (returned as log-probabilities, so a softmax
of them gives the averages exactly and every consumer of logits works unchanged); the field is averaged.

The cost is a second network run; ``bench/cv.py --tta flip`` measures it and the held-out gain
(``docs/benchmarks.md``, section ``cv-cpu-tta``; ``docs/model.md``). Nothing uses it unless asked.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ml.data import FINGER_FLIP
from ml.models.outputs import NUM_FINGER_CLASSES, Outputs

__all__ = ["FINGER_CHANNEL_FLIP", "TTA_MODES", "FlipTTA", "check_tta", "mirror_outputs", "with_tta"]

#: Test-time augmentations by name: ``none`` the plain model, ``flip`` :class:`FlipTTA`.
TTA_MODES = ("none", "flip")

#: Class-logit channel of the mirrored image for each channel (channel k-1 = finger class k), from
#: ``ml.data.FINGER_FLIP``: 1-5 <-> 6-10.
FINGER_CHANNEL_FLIP = tuple(int(FINGER_FLIP[k]) - 1 for k in range(1, NUM_FINGER_CLASSES + 1))


def check_tta(name: str | None) -> str:
    """``name`` if it is one of :data:`TTA_MODES` (None: ``"none"``), else ValueError naming the known ones."""
    name = "none" if name is None else name
    if name not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {name!r}; known: {', '.join(TTA_MODES)}")
    return name


def _final(outputs: Outputs | list[Outputs]) -> Outputs:
    return outputs[0] if isinstance(outputs, list) else outputs  # all scales (training mode): final first


def mirror_outputs(outputs: Outputs) -> Outputs:
    """The outputs of an N x C x H x W batch mirrored left-right as labels are by ``ml.data.hflip_sample``:
    maps flipped along x, class channels 1-5 <-> 6-10, the field's x component negated. Works on logits and
    on (log-)probabilities alike (a channel permutation commutes with softmax); mirroring twice is exact."""
    fg, cls, field = outputs
    cls = cls[:, list(FINGER_CHANNEL_FLIP)]
    field = field * field.new_tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    return Outputs(fg.flip(-1), cls.flip(-1), field.flip(-1))


def _log_softmax(x: Tensor) -> Tensor:
    """log_softmax along channels written out: ONNX Runtime's LogSoftmax over a non-last axis of N x C x H x W
    transposes the maps (several times the network's own time at 360 x 480)."""
    x = x.float()
    x = x - x.amax(1, keepdim=True)
    return x - torch.log(torch.exp(x).sum(1, keepdim=True))


def _mean_log_prob(a: Tensor, b: Tensor) -> Tensor:
    """log((softmax(a) + softmax(b)) / 2) along channels, computed stably (logaddexp written out: ONNX has
    no such operator)."""
    la, lb = _log_softmax(a), _log_softmax(b)
    top = torch.maximum(la, lb)
    return top + torch.log(torch.exp(la - top) + torch.exp(lb - top)) - math.log(2.0)


class FlipTTA(nn.Module):
    """``model`` with horizontal-flip test-time augmentation (see the module docstring). ``batched``: the
    image and its mirror as one batch of 2 (True) or two runs of batch 1 (False); same outputs. Returns the
    averaged :class:`Outputs` (fg and cls as log-probabilities) for any batch size."""

    def __init__(self, model: nn.Module, batched: bool = True) -> None:
        super().__init__()
        self.model = model
        self.batched = batched

    def forward(self, images: Tensor) -> Outputs:
        mirrored = images.flip(-1)
        if self.batched:
            both = _final(self.model(torch.cat([images, mirrored], 0)))
            n = images.shape[0]
            plain = Outputs(*(t[:n] for t in both))
            back = mirror_outputs(Outputs(*(t[n:] for t in both)))
        else:
            plain = _final(self.model(images))
            back = mirror_outputs(_final(self.model(mirrored)))
        return Outputs(_mean_log_prob(plain.fg, back.fg), _mean_log_prob(plain.cls, back.cls),
                       (plain.field.float() + back.field.float()) / 2)


def with_tta(model: nn.Module, tta: str | None = "none", *, batched: bool = True) -> nn.Module:
    """``model`` run with the test-time augmentation ``tta`` (:data:`TTA_MODES`): the model itself for
    ``"none"`` (or None), :class:`FlipTTA` for ``"flip"``. Unknown names: ValueError."""
    tta = check_tta(tta)
    if tta == "none":
        return model
    return FlipTTA(model, batched=batched)
