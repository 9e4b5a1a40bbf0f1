"""Inference copies of a trained model: batch norm folded into the convs (:func:`fold_batchnorm`),
TensorFlow "SAME" pads merged into their stride-2 convs exactly (:func:`remove_tf_padding`,
:class:`SameStride2Conv`), and both plus eval mode and channels_last (:func:`inference_model`). Works on
every architecture of :mod:`ml.models`. Plain PyTorch; never imports Django."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.models.mobilenetv2 import TFSamePad2d

__all__ = ["SameStride2Conv", "fold_batchnorm", "inference_model", "remove_tf_padding"]


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every (conv -> BatchNorm2d) pair held as ``.conv`` / ``.bn`` of one module (ConvBNAct and the
    U-Net's blocks) into the conv, in place; BN becomes Identity. Only valid for inference (eval-mode BN).
    Returns the model."""
    for module in list(model.modules()):
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), bn.eval())
            module.bn = nn.Identity()
    return model


class SameStride2Conv(nn.Module):
    """Inference replacement of ``TFSamePad2d`` + a stride-2 3x3 conv (no padding), without the explicit
    pad (which costs a zero-filled copy of the input, and a layout change under channels_last).

    TensorFlow's "SAME" padding pads an even dimension by (0, 1) and an odd one by (1, 1). Along an odd
    dimension that is PyTorch's padding 1. Along an even one, out[i] = sum_m w[m] x[2i + m] equals a
    4-tap kernel (0, w0, w1, w2) with padding 1: sum_k w'[k] x[2i + k - 1]; the zero tap meets the top
    (left) padding and the last output uses the bottom (right) padding. The kernel is chosen per input
    size, so the result equals pad + conv exactly, for any size.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.stride != (2, 2) or conv.dilation != (1, 1) or conv.padding != (0, 0):
            raise ValueError("SameStride2Conv replaces 3x3 stride-2 undilated convs without padding")
        self.groups = conv.groups
        w4 = conv.weight.new_zeros(conv.weight.shape[:2] + (4, 4))
        w4[:, :, 1:, 1:] = conv.weight.detach()
        for kh in (3, 4):
            for kw in (3, 4):
                self.register_buffer(f"w{kh}{kw}", w4[:, :, 4 - kh:, 4 - kw:].contiguous())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        kh = 4 if x.shape[-2] % 2 == 0 else 3
        kw = 4 if x.shape[-1] % 2 == 0 else 3
        weight = getattr(self, f"w{kh}{kw}")
        return F.conv2d(x, weight, self.bias, stride=2, padding=1, groups=self.groups)


def remove_tf_padding(model: nn.Module) -> nn.Module:
    """Replace every (TFSamePad2d, stride-2 3x3 conv) pair of a ConvBNAct with :class:`SameStride2Conv`
    (exact; in place; for inference: the new module has buffers, not parameters). Returns the model."""
    for module in list(model.modules()):
        pad, conv = getattr(module, "pad", None), getattr(module, "conv", None)
        if isinstance(pad, TFSamePad2d) and isinstance(conv, nn.Conv2d) and pad.stride == 2 and pad.kernel_size == 3 \
                and pad.dilation == 1:
            module.conv = SameStride2Conv(conv)
            module.pad = nn.Identity()
    return model


def inference_model(model: nn.Module, channels_last: bool = True, fold: bool = True,
                    fuse_tf_padding: bool = True) -> nn.Module:
    """A copy of ``model`` for fast inference: eval mode, BN folded, TF "SAME" pads merged into their
    convs (:func:`remove_tf_padding`; exact), channels_last memory format (feed it
    ``x.contiguous(memory_format=torch.channels_last)`` for best speed; any layout works)."""
    model = copy.deepcopy(model).eval()
    if fold:
        fold_batchnorm(model)
    if fuse_tf_padding:
        remove_tf_padding(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
