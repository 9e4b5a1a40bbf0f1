"""The module every format exports: :class:`ExportModule` (the trained model turned into the exported
function of :mod:`ml.export.spec`), and :func:`reference_outputs`, the PyTorch outputs every artifact is
compared with."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ml.models.inference import inference_model

from .spec import OUTPUT_NAMES

__all__ = ["ExportModule", "reference_outputs"]


class ExportModule(nn.Module):
    """``image`` N x 3 x H x W RGB in [0, 1] -> ``(fg_prob N x 1 x H x W, class_prob N x C x H x W,
    field N x 2 x H x W)``.

    ``fold=True`` (what is exported): :func:`ml.models.inference.inference_model` of the model (eval, BN folded,
    TF "SAME" pads merged into their convs; exact). ``fold=False``: the model as trained, in eval mode:
    the PyTorch reference every artifact is compared with."""

    def __init__(self, model: nn.Module, fold: bool = True) -> None:
        super().__init__()
        if fold:
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

