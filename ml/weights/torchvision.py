"""torchvision's ImageNet MobileNetV2 checkpoints as state dicts of our
:class:`ml.models.mobilenetv2.MobileNetV2Classifier`: the key map and the renaming, checked key by key.
Plain PyTorch; never imports Django (nor torchvision: a checkpoint is a plain state dict)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ml.models.mobilenetv2 import STAGE_SETTINGS
from ml.weights.sources import WeightsError

__all__ = ["read_torchvision_checkpoint", "torchvision_key_map", "torchvision_state_dict"]

_BN_BUFFERS = ("weight", "bias", "running_mean", "running_var")


# ----------------------------------------------------------------------------------------------------
# torchvision checkpoints
# ----------------------------------------------------------------------------------------------------


def torchvision_key_map() -> dict[str, str]:
    """torchvision MobileNetV2 state-dict key -> our MobileNetV2Classifier key (``num_batches_tracked``
    entries included; they are optional in a checkpoint)."""
    mapping: dict[str, str] = {}

    def add(tv_conv: str, tv_bn: str, ours: str) -> None:
        mapping[f"{tv_conv}.weight"] = f"{ours}.conv.weight"
        for b in (*_BN_BUFFERS, "num_batches_tracked"):
            mapping[f"{tv_bn}.{b}"] = f"{ours}.bn.{b}"

    add("features.0.0", "features.0.1", "features.stages.0")  # Conv2dNormActivation: [conv, bn, relu6]
    idx = 1
    for k, (t, _, n, _) in enumerate(STAGE_SETTINGS, start=1):
        for i in range(n):
            tv, ours = f"features.{idx}.conv", f"features.stages.{k}.{i}"
            if t == 1:  # conv = [ConvBNReLU(dw), Conv2d, BatchNorm2d]
                add(f"{tv}.0.0", f"{tv}.0.1", f"{ours}.dw")
                add(f"{tv}.1", f"{tv}.2", f"{ours}.project")
            else:  # conv = [ConvBNReLU(expand), ConvBNReLU(dw), Conv2d, BatchNorm2d]
                add(f"{tv}.0.0", f"{tv}.0.1", f"{ours}.expand")
                add(f"{tv}.1.0", f"{tv}.1.1", f"{ours}.dw")
                add(f"{tv}.2", f"{tv}.3", f"{ours}.project")
            idx += 1
    add(f"features.{idx}.0", f"features.{idx}.1", "head")
    mapping["classifier.1.weight"] = "fc.weight"
    mapping["classifier.1.bias"] = "fc.bias"
    return mapping


def torchvision_state_dict(state_dict: Mapping[str, Tensor], origin: str = "checkpoint") -> dict[str, Tensor]:
    """Rename a torchvision MobileNetV2 state dict to our classifier's keys. Every required key must be
    present and no unknown key may be; else :class:`WeightsError` (naming ``origin``)."""
    sd = dict(state_dict)
    if sd and all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    mapping = torchvision_key_map()
    unknown = sorted(k for k in sd if k not in mapping)
    missing = sorted(k for k in mapping if k not in sd and not k.endswith("num_batches_tracked"))
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:5])}")
        if unknown:
            parts.append(f"{len(unknown)} unexpected key(s), e.g. {', '.join(unknown[:5])}")
        raise WeightsError(
            f"{origin}: not a torchvision MobileNetV2 state dict: " + "; ".join(parts)
        )
    out = {}
    for k, v in sd.items():
        if not isinstance(v, Tensor):
            raise WeightsError(f"{origin}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[mapping[k]] = v
    return out


def read_torchvision_checkpoint(path: Path) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad weight file
        raise WeightsError(f"{path}: cannot be read as a PyTorch checkpoint ({type(e).__name__}: {e})") from e
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return torchvision_state_dict(obj, origin=str(path))

