"""The NailSet cascade network (Duke et al., CVPRW 2019, "Nail Polish Try-On"), plain PyTorch.

Never imports Django. Our reading of the paper is in ``docs/model.md`` and ``../shared/paper-notes.md``;
in short (H x W = input size, both multiples of 32 for exact strides)::

    x (RGB in [0, 1]) -> normalisation of the pretrained source (inside the model)
      high branch: MobileNetV2 stages 1..4 on x                      -> stage_high4: 32 ch  at H/8
      low branch:  MobileNetV2 stages 1..8 on x downsampled x2 (bilinear), output stride 16
                   (stage 7 stride 2 -> 1, dilation 2 in stages 7, 8) -> stage_low4:  32 ch  at H/16
                                                                     -> stage_low8: 320 ch  at H/32
      Fusion0: F1 = up2(stage_low8), F2 = stage_low4  -> C ch at H/16     (C = fusion width, 320)
      Fusion1: F1 = up2(Fusion0),    F2 = stage_high4 -> C ch at H/8
      output:  up8(Fusion1) -> three 1x1 heads: fg/bg (2 logits), finger class (10 logits),
               direction field (2 values)
      Fusion block: F1 -> 3x3 conv, dilation 2 + BN; F2 -> 1x1 conv + BN; sum; ReLU.
      Deep supervision (training only): an output branch on the upsampled F1 of each fusion block,
      at H/16 (Fusion0) and H/8 (Fusion1).

Boundary refinement (``refine_stride=4`` or ``2``; 0, the paper's cascade, has none; issue #17): nails are small,
so the H/8 heads decide their boundaries on a grid a few cells wide. With it::

      refine:  Fusion1 (C ch, H/8) -> 1x1 conv + BN + ReLU6 to w ch (``refine_width``, 32)
               -> up2, concat stage_high3 (24 ch at H/4) 1x1-reduced to w/2 ch, two depthwise-separable 3x3
                  convs -> w ch at H/4
               [-> up2, concat stage_high2 (16 ch at H/2) reduced alike, two more -> w ch at H/2]  (stride 2)
      output:  residual: the paper's heads on Fusion1 (H/8), up2 (or up4), + the three heads on the refined
               map (fg bias 0, weights ~0: at initialisation the paper's output), then up4 (or up2)
      deep supervision adds the paper's output at H/8: [final, fusion1_out, fusion1_aux, fusion0_aux].

It adds 0.07 GMAC at 360x480 (1.7 %; stride 2: 0.22 GMAC) to the paper's 3.96.

The 1x1 heads commute with bilinear upsampling (its weights sum to 1), so every output branch runs its
heads on the small map and upsamples the 14 head channels (``heads_before_upsample=True``, default): the
result equals upsample-then-heads to float rounding (tested < 1e-5) and avoids a C x H x W feature map
(~400 MB at 480x640 with C = 320) and ~1.4 GMAC.

Variants (:class:`ml.models.config.ModelConfig`):
    ``depth=55``  the full low branch (stem + 17 bottlenecks = 51 convs) + 4 decoder convs;
    ``depth=43``  the low branch without the 160- and 320-ch groups (-12 convs); Fusion0 takes the
                  96-ch stage 6 map (at H/32) as F1;
    ``low_downsample=1``  the low branch reads the photo itself, not x2 downsampled (issue #17): stage_low4,
                  Fusion0 and its deep-supervision branch at H/8, Fusion1 meets it without an upsample;
    ``shared_encoder=True``  (with ``low_downsample=1``) no high branch: the low branch's own stages 1-4 are
                  the same computation at the same resolution, so Fusion1 and the refinement take them; Fusion0
                  fuses stage_low8 (H/16) with the stride-16 stage 6 (96 ch), no upsample. One full-resolution
                  encoder pass: at fusion 128, 2.26 GMAC at 360x480 against 3.40 with the second encoder;
    ``arch="baseline"``  no cascade: the low branch alone, Fusion0, heads, upsample x16;
    ``arch="unet"``      the U-Net of :mod:`ml.models.unet` on the same encoder (latency comparison).

Builders, torchvision style: :func:`cascade_net` (from a preset name, a config or keyword overrides),
:func:`cascade_55`, :func:`cascade_43`, :func:`cascade_refined`, :func:`cascade_baseline`; any ``arch``:
:func:`ml.models.registry.build_model`. Inference copies (BN folded, TF "SAME" pads merged, channels_last):
:mod:`ml.models.inference`.

Forward: ``model(images)`` with images N x 3 x H x W, RGB in [0, 1]. In training mode it returns a
list of :class:`Outputs`, finest first (``[final, fusion1_aux, fusion0_aux]``; refined: ``[final, fusion1_out,
fusion1_aux, fusion0_aux]``; the baseline ``[final, fusion0_aux]``); in eval mode the final :class:`Outputs` alone. ``all_scales=`` overrides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.models.backbones import mobilenet_v2
from ml.models.config import ModelConfig, model_config
from ml.models.mobilenetv2 import (
    BN_EPS,
    BN_MOMENTUM,
    OS16_STAGE_DILATIONS,
    OS16_STAGE_STRIDES,
    ConvBNAct,
    MobileNetV2,
)
from ml.models.outputs import FG_PRIOR, NUM_FINGER_CLASSES, Outputs

__all__ = [
    "BoundaryRefinement",
    "CascadeNet",
    "FusionBlock",
    "OutputBranch",
    "RefineLevel",
    "cascade_43",
    "cascade_55",
    "cascade_baseline",
    "cascade_net",
    "cascade_refined",
    "count_decoder_convs",
    "count_low_path_convs",
]


# ----------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class OutputBranch(nn.Module):
    """Three 1x1 conv heads on shared features: fg/bg (2), finger class (``num_classes``), field (2).

    ``forward(features, size)`` returns :class:`Outputs` at ``size``: the features are upsampled
    bilinearly to ``size`` before the heads, or (``heads_before_upsample``) the 14 head outputs are
    upsampled instead, which is the same function (1x1 convs and bilinear interpolation commute).
    ``forward(features, size, base=logits)`` adds ``base`` (a coarser branch's 14 outputs, upsampled to the
    features' size) before the upsample to ``size``: a residual branch (``nail_prior=False``: its fg bias
    starts at 0, the base carries the prior).
    """

    def __init__(self, in_channels: int, num_classes: int = NUM_FINGER_CLASSES, heads_before_upsample: bool = True,
                 nail_prior: bool = True):
        super().__init__()
        self.fg = nn.Conv2d(in_channels, 2, 1)
        self.cls = nn.Conv2d(in_channels, num_classes, 1)
        self.field = nn.Conv2d(in_channels, 2, 1)
        self.heads_before_upsample = heads_before_upsample
        for conv in (self.fg, self.cls, self.field):
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.zeros_(conv.bias)
        if nail_prior:
            with torch.no_grad():
                self.fg.bias[1] = math.log(FG_PRIOR / (1 - FG_PRIOR))

    def logits(self, features: Tensor) -> Tensor:
        """The 14 head outputs at the features' size: the three heads as one 1x1 conv, so that one
        interpolation upsamples all 14 channels. NCHW: faster than channels_last for the interpolation of
        14 channels, and callers get plain contiguous outputs."""
        weight = torch.cat([self.fg.weight, self.cls.weight, self.field.weight])
        bias = torch.cat([self.fg.bias, self.cls.bias, self.field.bias])
        return F.conv2d(features, weight, bias).contiguous()

    def split(self, y: Tensor) -> Outputs:
        c = self.cls.out_channels
        return Outputs(y[:, :2], y[:, 2:2 + c], y[:, 2 + c:])

    def forward(self, features: Tensor, size: tuple[int, int], base: Tensor | None = None) -> Outputs:
        small = tuple(features.shape[-2:])
        if self.heads_before_upsample:
            y = self.logits(features)
            if base is not None:
                y = y + _up(base, small)
            return self.split(_up(y, size))
        y = self.logits(_up(features, size))
        if base is not None:
            y = y + _up(_up(base, small), size)
        return self.split(y)


def _kaiming(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class RefineLevel(nn.Module):
    """One x2 step of :class:`BoundaryRefinement`: ``x`` upsampled to the skip's size, concatenated with the
    skip reduced by a 1x1 conv to ``width // 2`` channels, then two depthwise-separable 3x3 convs (depthwise
    3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6) to ``width`` channels."""

    def __init__(self, width: int, skip_channels: int, bn_eps: float = BN_EPS, bn_momentum: float = BN_MOMENTUM):
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        joined = width + width // 2
        self.skip = ConvBNAct(skip_channels, width // 2, 1, **bn)
        self.convs = nn.Sequential(
            ConvBNAct(joined, joined, 3, groups=joined, **bn), ConvBNAct(joined, width, 1, **bn),
            ConvBNAct(width, width, 3, groups=width, **bn), ConvBNAct(width, width, 1, **bn),
        )
        _kaiming(self)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.convs(torch.cat([_up(x, tuple(skip.shape[-2:])), self.skip(skip)], dim=1))


class BoundaryRefinement(nn.Module):
    """The fused H/8 map (``in_channels``) reduced by a 1x1 conv to ``width`` channels, then one
    :class:`RefineLevel` per skip (the high branch's stride-4 stage, then optionally its stride-2 stage),
    each doubling the resolution: the heads then run at H/4 (or H/2) instead of H/8."""

    def __init__(self, in_channels: int, skip_channels: list[int], width: int,
                 bn_eps: float = BN_EPS, bn_momentum: float = BN_MOMENTUM) -> None:
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.reduce = ConvBNAct(in_channels, width, 1, **bn)
        self.levels = nn.ModuleList(RefineLevel(width, c, **bn) for c in skip_channels)
        _kaiming(self.reduce)

    def forward(self, fused: Tensor, skips: list[Tensor]) -> Tensor:
        x = self.reduce(fused)
        for level, skip in zip(self.levels, skips):
            x = level(x, skip)
        return x


class FusionBlock(nn.Module):
    """The paper's Figure 2 (left): F1 (already upsampled x2) -> 3x3 conv, dilation 2 + BN;
    F2 -> 1x1 projection + BN; sum; ReLU."""

    def __init__(self, f1_channels: int, f2_channels: int, out_channels: int,
                 bn_eps: float = BN_EPS, bn_momentum: float = BN_MOMENTUM) -> None:
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.dilated = ConvBNAct(f1_channels, out_channels, 3, dilation=2, activation=False, **bn)
        self.projection = ConvBNAct(f2_channels, out_channels, 1, activation=False, **bn)
        _kaiming(self)

    def forward(self, f1_up: Tensor, f2: Tensor) -> Tensor:
        return F.relu(self.dilated(f1_up) + self.projection(f2))


# ----------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------


def _encoder(config: ModelConfig, num_stages: int, os16: bool, load_pretrained: bool) -> MobileNetV2:
    return mobilenet_v2(
        width_mult=config.width_mult,
        weights=config.pretrained if load_pretrained else None,
        weights_path=config.weights_path,
        num_stages=num_stages,
        stage_strides=OS16_STAGE_STRIDES if os16 else None,
        stage_dilations=OS16_STAGE_DILATIONS if os16 else None,
        tf_padding=config.resolved_tf_padding,
        bn_eps=config.bn_eps,
        bn_momentum=config.bn_momentum,
    )


class CascadeNet(nn.Module):
    """The cascade (``arch="cascade"``) or the no-cascade baseline (``arch="baseline"``); see the module
    docstring. Build it with :func:`cascade_net`. ``config`` is kept as ``model.config``.

    ``load_pretrained=False`` builds the architecture of a pretrained config (its padding and input
    normalisation) without reading the weight files: for loading a trained checkpoint."""

    def __init__(self, config: ModelConfig | None = None, load_pretrained: bool = True) -> None:
        super().__init__()
        config = config or ModelConfig()
        if config.arch not in ("cascade", "baseline"):
            raise ValueError(f"CascadeNet builds arch 'cascade' or 'baseline', not {config.arch!r}")
        self.config = config
        self.cascade = config.arch == "cascade"
        low_stages = 8 if config.depth == 55 else 6
        self.low = _encoder(config, low_stages, os16=low_stages == 8, load_pretrained=load_pretrained)
        separate_high = self.cascade and not config.shared_encoder
        self.high = _encoder(config, 4, os16=False, load_pretrained=load_pretrained) if separate_high else None
        high_channels = (self.high or self.low).stage_channels  # the high branch's stages, or the low's own
        #: the low-branch stage that is Fusion0's F2: stage_low4, or stage 6 (stride 16) with a shared encoder
        self.fusion0_stage = 6 if config.shared_encoder else 4
        c = config.fusion_width
        bn = {"bn_eps": config.bn_eps, "bn_momentum": config.bn_momentum}
        hb = config.heads_before_upsample
        self.fusion0 = FusionBlock(self.low.out_channels, self.low.stage_channels[self.fusion0_stage - 1], c, **bn)
        self.aux0 = OutputBranch(self.low.out_channels, config.num_classes, hb)
        if self.cascade:
            self.fusion1 = FusionBlock(c, high_channels[3], c, **bn)
            self.aux1 = OutputBranch(c, config.num_classes, hb)
        else:
            self.fusion1 = None
            self.aux1 = None
        # the high branch's stages at strides 4 and 2 (stages 3 and 2), finest last
        self.refine_stages = [3, 2][:{0: 0, 4: 1, 2: 2}[config.refine_stride]]
        if self.refine_stages:
            self.refine = BoundaryRefinement(c, [high_channels[k - 1] for k in self.refine_stages],
                                             config.refine_width, **bn)
            self.aux_fused = OutputBranch(c, config.num_classes, hb)  # the paper's final branch: the base
        else:
            self.refine = None
            self.aux_fused = None
        self.head = OutputBranch(config.refine_width if self.refine_stages else c, config.num_classes, hb,
                                 nail_prior=not self.refine_stages)
        self.register_buffer("input_mean", torch.tensor(config.input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(config.input_std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: Tensor) -> Tensor:
        return (images - self.input_mean.to(images.dtype)) / self.input_std.to(images.dtype)

    def low_input(self, x: Tensor) -> Tensor:
        """The low branch's input from the normalised photo: downsampled x2 (the paper's) or the photo itself."""
        if self.config.low_downsample == 1:
            return x
        return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, recompute_scale_factor=False)

    def forward(self, images: Tensor, all_scales: bool | None = None) -> Outputs | list[Outputs]:
        """``images``: N x 3 x H x W RGB in [0, 1]. Training mode (or ``all_scales=True``): the list of
        :class:`Outputs`, finest first; eval mode: the final :class:`Outputs` at H x W."""
        all_scales = self.training if all_scales is None else all_scales
        size = tuple(images.shape[-2:])
        x = self.normalize(images)
        low = self.low.forward_stages(self.low_input(x))
        f2, low_last = low[self.fusion0_stage - 1], low[-1]
        size0 = tuple(f2.shape[-2:])  # Fusion0's: H/16, or H/8 with the low branch at full resolution
        f1 = _up(low_last, size0)
        fused = self.fusion0(f1, f2)
        aux = []
        if all_scales:
            aux.append(self.aux0(low_last, size0))  # = heads on the upsampled F1 (see OutputBranch)
        if self.cascade:
            high = low if self.high is None else self.high.forward_stages(x)
            high4 = high[3]
            size8 = tuple(high4.shape[-2:])
            f1 = _up(fused, size8)
            if all_scales:
                aux.insert(0, self.aux1(fused, size8))
            fused = self.fusion1(f1, high4)
            if self.refine is not None:
                coarse = self.aux_fused.logits(fused)  # the paper's final output at H/8, before its upsample
                if all_scales:
                    aux.insert(0, self.aux_fused.split(coarse))
                refined = self.refine(fused, [high[k - 1] for k in self.refine_stages])
                final = self.head(refined, size, base=coarse)
                return [final, *aux] if all_scales else final
        final = self.head(fused, size)
        return [final, *aux] if all_scales else final

    @property
    def output_strides(self) -> list[int]:
        """Stride of each training-mode output w.r.t. the input (finest first)."""
        # Fusion0 and its branch: at its F2 stage's stride in the low branch, times the low branch's downsampling
        fusion0 = self.config.low_downsample * self.low.stage_output_strides[self.fusion0_stage - 1]
        if not self.cascade:
            return [1, fusion0]
        return [1, 8, 8, fusion0] if self.refine is not None else [1, 8, fusion0]


def count_low_path_convs(model: CascadeNet) -> int:
    """Convolutions on the low-resolution path (the low encoder), the paper's layer count minus the
    decoder's."""
    return sum(1 for m in model.low.modules() if isinstance(m, nn.Conv2d))


def count_decoder_convs(model: CascadeNet) -> int:
    """Convolutions of the fusion blocks (2 each; the 1x1 heads are not counted)."""
    blocks = [b for b in (model.fusion0, model.fusion1) if b is not None]
    return sum(1 for b in blocks for m in b.modules() if isinstance(m, nn.Conv2d))


# ----------------------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------------------


def cascade_net(config: ModelConfig | Mapping[str, Any] | str | None = None, **overrides: Any) -> CascadeNet:
    """The cascade (or baseline) from a preset name ("cascade-55", "cascade-43", "tiny", ...), a
    :class:`ModelConfig`, a dict, or None (the paper's model: depth 55, fusion 320, width 1.0,
    "imagenet-tflite" weights), with keyword overrides, e.g. ``cascade_net(fusion_width=128)``."""
    config = model_config(config, **overrides)
    if config.arch == "unet":
        raise ValueError("cascade_net builds the cascade or the baseline; use ml.models.unet.unet_mobilenet_v2")
    return CascadeNet(config)


def cascade_55(**overrides: Any) -> CascadeNet:
    """The paper's "55-layer" cascade (full low branch)."""
    return cascade_net(ModelConfig(depth=55), **overrides)


def cascade_43(**overrides: Any) -> CascadeNet:
    """The "43-layer" cascade (low branch without the 160- and 320-ch groups)."""
    return cascade_net(ModelConfig(depth=43), **overrides)


def cascade_refined(**overrides: Any) -> CascadeNet:
    """The cascade with the boundary refinement to stride 4 (``refine_stride=2``: to stride 2)."""
    return cascade_net(ModelConfig(refine_stride=4), **overrides)


def cascade_baseline(**overrides: Any) -> CascadeNet:
    """The no-cascade baseline of the ablation: low branch, Fusion0 and the output branch only."""
    return cascade_net(ModelConfig(arch="baseline"), **overrides)

