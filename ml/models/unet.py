"""A U-Net on the same MobileNetV2 encoder: the comparison model of the latency (and ablation) benchmarks.

Plain PyTorch, never imports Django. It reproduces segmentation_models_pytorch's ``Unet("mobilenet_v2")``
(smp 0.3/0.4 defaults), which is what a user would otherwise pick; smp itself needs torchvision, which does
not import beside this project's CPU torch wheel, so the architecture is written out here:

    encoder: MobileNetV2 width ``width_mult`` on the full-resolution input, stages 1..8 plus the final
             1x1 conv to 1280 ch (as smp's encoder); skip features at strides 2, 4, 8, 16
             (16, 24, 32, 96 ch after stages 2, 3, 4, 6) and 1280 ch at stride 32
    decoder: 5 blocks (256, 128, 64, 32, 16 ch): nearest x2 upsample -> concat skip ->
             [3x3 conv + BN + ReLU] x 2; the last block has no skip (full resolution)
    head:    3x3 conv 16 -> 2 + 10 + 2 channels, split into the same :class:`ml.models.outputs.Outputs`
             (fg/bg logits, finger-class logits, direction field) as the cascade.

Same interface as :class:`ml.models.cascade.CascadeNet`: RGB in [0, 1] in, normalisation inside; eval mode
returns :class:`Outputs`, training mode a one-element list (no deep supervision).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.models.backbones import mobilenet_v2_classifier
from ml.models.config import ModelConfig, model_config
from ml.models.mobilenetv2 import ConvBNAct
from ml.models.outputs import FG_PRIOR, Outputs

__all__ = ["ConvBNReLU", "DecoderBlock", "UNet", "unet_mobilenet_v2"]

#: Encoder stages (1-based) after which each resolution's feature is taken (strides 2, 4, 8, 16).
SKIP_STAGES = (2, 3, 4, 6)


class ConvBNReLU(nn.Module):
    """3x3 conv (no bias) -> BN -> ReLU (``.conv`` / ``.bn``, so ``fold_batchnorm`` folds it)."""

    def __init__(self, in_channels: int, out_channels: int, bn_eps: float, bn_momentum: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        nn.init.kaiming_uniform_(self.conv.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, bn_eps: float, bn_momentum: float):
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels + skip_channels, out_channels, bn_eps, bn_momentum)
        self.conv2 = ConvBNReLU(out_channels, out_channels, bn_eps, bn_momentum)

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        size = skip.shape[-2:] if skip is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UNet(nn.Module):
    def __init__(self, config: ModelConfig | None = None, load_pretrained: bool = True) -> None:
        super().__init__()
        config = config or model_config("unet")
        if config.arch != "unet":
            raise ValueError(f"UNet builds arch 'unet', not {config.arch!r}")
        self.config = config
        classifier = mobilenet_v2_classifier(
            width_mult=config.width_mult,
            weights=config.pretrained if load_pretrained else None,
            weights_path=config.weights_path,
            num_classes=1000,
            tf_padding=config.resolved_tf_padding,
            bn_eps=config.bn_eps,
            bn_momentum=config.bn_momentum,
        )
        self.encoder = classifier.features
        self.encoder_head: ConvBNAct = classifier.head
        skips = [self.encoder.stage_channels[k - 1] for k in SKIP_STAGES]
        head_ch = self.encoder_head.conv.out_channels
        dec = list(config.unet_decoder_channels)
        if len(dec) != 5:
            raise ValueError(f"unet_decoder_channels needs 5 values, got {dec}")
        ins = [head_ch] + dec[:-1]
        skip_chs = skips[::-1] + [0]
        bn = (config.bn_eps, config.bn_momentum)
        self.decoder = nn.ModuleList(DecoderBlock(i, s, o, *bn) for i, s, o in zip(ins, skip_chs, dec))
        self.num_classes = config.num_classes
        self.head = nn.Conv2d(dec[-1], 2 + config.num_classes + 2, 3, padding=1)
        with torch.no_grad():  # the same nail prior as the cascade's heads
            self.head.bias.zero_()
            self.head.bias[1] = math.log(FG_PRIOR / (1 - FG_PRIOR))
        self.register_buffer("input_mean", torch.tensor(config.input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(config.input_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor, all_scales: bool | None = None) -> Outputs | list[Outputs]:
        all_scales = self.training if all_scales is None else all_scales
        x = (images - self.input_mean.to(images.dtype)) / self.input_std.to(images.dtype)
        feats = self.encoder.forward_stages(x)
        skips = [feats[k - 1] for k in SKIP_STAGES]
        x = self.encoder_head(feats[-1])
        for block, skip in zip(self.decoder, skips[::-1] + [None]):
            x = block(x, skip)
        if tuple(x.shape[-2:]) != tuple(images.shape[-2:]):
            x = F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(x)
        c = self.num_classes
        out = Outputs(y[:, :2], y[:, 2:2 + c], y[:, 2 + c:])
        return [out] if all_scales else out

    @property
    def output_strides(self) -> list[int]:
        return [1]


def unet_mobilenet_v2(config: ModelConfig | dict | str | None = "unet", **overrides: Any) -> UNet:
    """The U-Net from a preset ("unet", "tiny-unet"), a config or a dict, with keyword overrides."""
    return UNet(model_config(config, arch="unet", **overrides))
