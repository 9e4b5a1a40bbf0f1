"""Pretrained weights into a MobileNetV2: :func:`load_pretrained` (a named source, converted and checked
key by key) and :func:`recalibrate_batchnorm` (batch-norm statistics for weights that came with batch norm
folded, before fine-tuning). Plain PyTorch; never imports Django."""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ml.models.mobilenetv2 import MobileNetV2, MobileNetV2Classifier
from ml.weights.sources import WeightSource, WeightsError, check_hash, get_source, resolve_weights_path
from ml.weights.tflite import tflite_state_dict_cached
from ml.weights.torchvision import read_torchvision_checkpoint

__all__ = ["load_pretrained", "recalibrate_batchnorm"]


def load_pretrained(
    model: MobileNetV2 | MobileNetV2Classifier,
    weights: str | WeightSource,
    weights_path: str | os.PathLike | None = None,
) -> MobileNetV2 | MobileNetV2Classifier:
    """Load the named pretrained weights into ``model`` (in place; also returned).

    A feature extractor takes the weights of the stages it has (a ``num_stages`` prefix takes a prefix);
    strides, dilations and padding do not change any weight shape. A classifier takes everything; a
    1001-class TensorFlow head loads into a 1000-class model by dropping the background row.
    Raises :class:`WeightsError` for a width other than 1.0, a missing file, or any key/shape mismatch.
    """
    source = get_source(weights)
    if model.width_mult != 1.0:
        raise WeightsError(
            f"weights {source.name!r} are for width_mult 1.0; this model has width_mult {model.width_mult}"
        )
    path = resolve_weights_path(source, weights_path)
    check_hash(source, path)
    if source.format == "tflite":
        stat = path.stat()
        full = tflite_state_dict_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, float(model.bn_eps))
    elif source.format == "torchvision":
        full = read_torchvision_checkpoint(path)
    else:
        raise WeightsError(f"weights {source.name!r}: unknown format {source.format!r}")

    target = model.state_dict()
    if isinstance(model, MobileNetV2Classifier):
        candidate = dict(full)
        fc = candidate.get("fc.weight")
        if fc is not None and fc.shape[0] == 1001 and model.num_classes == 1000:
            candidate["fc.weight"] = fc[1:]
            candidate["fc.bias"] = candidate["fc.bias"][1:]
    else:
        built = tuple(f"stages.{i}." for i in range(model.num_stages))
        candidate = {
            k[len("features."):]: v
            for k, v in full.items()
            if k.startswith("features.") and k[len("features."):].startswith(built)
        }
    new_state = {}
    for key, ref in target.items():
        if key not in candidate:
            if key.endswith("num_batches_tracked"):
                new_state[key] = ref
                continue
            raise WeightsError(f"{path}: has no weight for {key}")
        value = candidate[key]
        if tuple(value.shape) != tuple(ref.shape):
            raise WeightsError(
                f"{path}: {key} has shape {tuple(value.shape)}, the model expects {tuple(ref.shape)}"
            )
        new_state[key] = value.to(ref.dtype)
    model.load_state_dict(new_state, strict=True)
    model.weights_source = source
    return model



@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor]) -> nn.Module:
    """Give every BatchNorm2d of ``model`` running statistics measured on ``batches`` (normalised input
    tensors) while keeping its eval-mode function unchanged.

    Weights converted from TensorFlow Lite hold folded batch norm (mean 0, variance 1 - eps, scale 1),
    exact in eval mode; in training mode, batch statistics would then rescale every channel to unit
    variance and throw away the pretrained scales. After this, each layer computes the same affine map
    in eval mode, and in training mode batch statistics close to the measured ones reproduce it. Call it
    before fine-tuning such a model with batch norm in training mode (or keep batch norm frozen).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums: dict[nn.Module, list] = {bn: [0, 0.0, 0.0] for bn in bns}

    def hook(module, args):
        x = args[0].detach().to(torch.float64)
        dims = [0, 2, 3]
        count = x.numel() // x.shape[1]
        s = sums[module]
        s[0] += count
        s[1] = s[1] + x.sum(dims)
        s[2] = s[2] + (x * x).sum(dims)

    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for bn in bns:
        count, s1, s2 = sums[bn]
        if count == 0:
            continue
        mean = s1 / count
        var = (s2 / count - mean * mean).clamp_min(0)
        # Current eval map: y = a * z + c with a = w / sqrt(rv + eps), c = b - a * rm.
        rm = bn.running_mean.to(torch.float64)
        rv = bn.running_var.to(torch.float64)
        w = bn.weight.to(torch.float64)
        b = bn.bias.to(torch.float64)
        a = w / torch.sqrt(rv + bn.eps)
        c = b - a * rm
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(a * torch.sqrt(var + bn.eps))
        bn.bias.copy_(c + a * mean)
    return model
