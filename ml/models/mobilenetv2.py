"""MobileNetV2 (Sandler et al., CVPR 2018) as the staged encoder of the NailSet cascade.

Plain PyTorch; this module never imports Django. It follows torchvision's model files in spirit: one
architecture per file; the architecture only (weights and builders: see the end of this docstring).

Stages (our settled reading of Duke et al., CVPRW 2019; see ``docs/mobilenetv2-weights.md``)::

    stage  layers                               t    c    n   s   output for a 224x224 input
    1      3x3 conv, stride 2 (the stem)        -   32    1   2   32 x 112 x 112
    2      bottleneck group                     1   16    1   1   16 x 112 x 112
    3      bottleneck group                     6   24    2   2   24 x  56 x  56
    4      bottleneck group                     6   32    3   2   32 x  28 x  28
    5      bottleneck group                     6   64    4   2   64 x  14 x  14
    6      bottleneck group                     6   96    3   1   96 x  14 x  14
    7      bottleneck group                     6  160    3   2  160 x   7 x   7
    8      bottleneck group                     6  320    1   1  320 x   7 x   7

Stages are numbered from 1 as in the paper; ``model.stages[k - 1]`` is stage ``k`` and
``model.forward_stages(x)[k - 1]`` its output. The final 1x1 -> 1280 conv and the classifier exist only
in :class:`MobileNetV2Classifier` (used to verify pretrained weights), never in the feature extractor.

Per stage, the stride (of the stage's first block; of the conv for the stem) and the dilation (of every
depthwise 3x3 conv in the stage) can be set. The cascade's low-resolution branch uses
``stage_strides=OS16_STAGE_STRIDES, stage_dilations=OS16_STAGE_DILATIONS``: stage 7's first block goes
from stride 2 to 1 and the depthwise convs of stages 7 and 8 use dilation 2, so the encoder's output
stride is 16 instead of 32.

Batch norm: ``eps=1e-5`` and ``momentum=0.1`` by default (PyTorch's defaults, with which torchvision's
ImageNet weights were trained). TensorFlow's MobileNetV2 used ``epsilon=1e-3`` and a moving-average decay
of 0.997 (PyTorch momentum 0.003); both are constructor arguments (``bn_eps``, ``bn_momentum``).

Padding: PyTorch's symmetric padding by default. With ``tf_padding=True`` every stride-2 conv is preceded
by an explicit zero padding computed as TensorFlow's "SAME" does (the larger half at the bottom/right:
(0, 1, 0, 1) for a 3x3 stride-2 conv on an even-sized input), which the weights converted from
TensorFlow Lite need to reproduce TensorFlow's numerics. Stride-1 convs pad symmetrically either way
(identical to "SAME" for odd kernels). The option adds no parameters, so state-dict keys never depend
on it.

The pretrained weights (named sources, converters from TensorFlow Lite and torchvision) are in
:mod:`ml.weights`; the builders that combine both (:func:`ml.models.backbones.mobilenet_v2`) in
:mod:`ml.models.backbones`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.weights.sources import WeightSource

__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "NUM_STAGES",
    "OS16_STAGE_DILATIONS",
    "OS16_STAGE_STRIDES",
    "STAGE_SETTINGS",
    "ConvBNAct",
    "InvertedResidual",
    "MobileNetV2",
    "MobileNetV2Classifier",
    "TFSamePad2d",
    "make_divisible",
    "tf_same_padding",
]

# ----------------------------------------------------------------------------------------------------
# Architecture constants
# ----------------------------------------------------------------------------------------------------

#: Number of stages of the full encoder (stem + 7 bottleneck groups).
NUM_STAGES = 8
#: Output channels of the stem (stage 1) at width 1.0.
STEM_CHANNELS = 32
#: Output channels of the 1x1 conv before the classifier (classification wrapper only), width <= 1.0.
LAST_CHANNELS = 1280
#: (expansion t, output channels c, blocks n, stride s) of stages 2..8, as in the MobileNetV2 paper.
STAGE_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
#: Default stride of each stage (stage 1 = stem), indexable as ``DEFAULT_STAGE_STRIDES[k - 1]``.
DEFAULT_STAGE_STRIDES: tuple[int, ...] = (2,) + tuple(s for _, _, _, s in STAGE_SETTINGS)

#: Stage overrides giving output stride 16 (the cascade's low branch): stage 7 stride 2 -> 1 ...
OS16_STAGE_STRIDES: Mapping[int, int] = {7: 1}
#: ... and dilation 2 in the depthwise convs of stages 7 and 8.
OS16_STAGE_DILATIONS: Mapping[int, int] = {7: 2, 8: 2}

#: Batch-norm defaults (PyTorch's / torchvision's). TensorFlow's MobileNetV2: eps 1e-3, momentum 0.003.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (not going down by more than 10 %),
    as in the reference TensorFlow and torchvision implementations."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ----------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding of one spatial dimension under TensorFlow's "SAME" rule: the output
    has ceil(size / stride) positions and an odd total padding puts the extra pixel after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class TFSamePad2d(nn.Module):
    """Zero padding reproducing TensorFlow's "SAME" padding for a conv of the given geometry, computed
    from the actual input size (so odd and even inputs both match TensorFlow)."""

    def __init__(self, kernel_size: int, stride: int, dilation: int = 1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = tf_same_padding(x.shape[-2], self.kernel_size, self.stride, self.dilation)
        left, right = tf_same_padding(x.shape[-1], self.kernel_size, self.stride, self.dilation)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}"


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU6 (or no activation for linear bottleneck projections).

    State-dict keys: ``conv.weight`` and ``bn.{weight,bias,running_mean,running_var,num_batches_tracked}``.
    Weights with batch norm folded into the conv (TensorFlow Lite) are held exactly by setting
    ``bn.weight = 1``, ``bn.bias = folded bias``, ``running_mean = 0``, ``running_var = 1 - eps``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        activation: bool = True,
        tf_padding: bool = False,
        bn_eps: float = BN_EPS,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        if tf_padding and stride > 1:
            self.pad: nn.Module = TFSamePad2d(kernel_size, stride, dilation)
            padding = 0
        else:
            self.pad = nn.Identity()
            padding = (kernel_size - 1) // 2 * dilation
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act: nn.Module = nn.ReLU6(inplace=True) if activation else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck: 1x1 expand (absent when t = 1) -> 3x3 depthwise (stride, dilation) ->
    1x1 linear projection, with a residual connection when stride is 1 and the channels match."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        dilation: int = 1,
        tf_padding: bool = False,
        bn_eps: float = BN_EPS,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand: nn.Module = (
            ConvBNAct(in_channels, hidden, 1, **bn) if expand_ratio != 1 else nn.Identity()
        )
        self.dw = ConvBNAct(
            hidden, hidden, 3, stride=stride, dilation=dilation, groups=hidden, tf_padding=tf_padding, **bn
        )
        self.project = ConvBNAct(hidden, out_channels, 1, activation=False, **bn)

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.use_residual else y


def _per_stage(value, default: Sequence[int], num_stages: int, name: str) -> list[int]:
    """A full per-stage list from None (defaults), a sequence (of NUM_STAGES or num_stages values) or a
    mapping {stage number (1-based): value} of overrides."""
    values = list(default[:num_stages])
    if value is None:
        pass
    elif isinstance(value, Mapping):
        for stage, v in value.items():
            if not isinstance(stage, int) or not 1 <= stage <= num_stages:
                raise ValueError(
                    f"{name}: stage {stage!r} is not one of the built stages 1..{num_stages}"
                )
            values[stage - 1] = v
    else:
        seq = list(value)
        if len(seq) not in (num_stages, NUM_STAGES):
            raise ValueError(
                f"{name}: expected {num_stages} (or {NUM_STAGES}) values, one per stage, got {len(seq)}"
            )
        values = seq[:num_stages]
    for stage, v in enumerate(values, 1):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}: stage {stage} value must be a positive int, got {v!r}")
    return values


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor made of addressable stages (see the module docstring).

    Args:
        width_mult: channel multiplier; every stage width is ``make_divisible(c * width_mult, 8)``.
        num_stages: build only stages 1..num_stages (the cascade's high branch uses 4).
        stage_strides: per-stage strides: None (paper values), a sequence of 8 (or num_stages) ints, or a
            mapping {stage: stride} of overrides. Stage 1's is the stem conv's, otherwise the first
            block's.
        stage_dilations: per-stage dilation of the depthwise convs (and of the stem conv for stage 1),
            same forms as ``stage_strides``; default 1 everywhere.
        tf_padding: TensorFlow "SAME" (asymmetric) padding before stride-2 convs; see the module docstring.
        bn_eps, bn_momentum: batch-norm settings of every layer.

    Attributes: ``stage_channels``, ``stage_strides``, ``stage_dilations``, ``stage_output_strides``
    (cumulative stride w.r.t. the input), ``out_channels``, ``width_mult``, ``num_stages``,
    ``tf_padding``, ``weights_source`` (the :class:`WeightSource` loaded, or None).
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_stages: int = NUM_STAGES,
        stage_strides: Sequence[int] | Mapping[int, int] | None = None,
        stage_dilations: Sequence[int] | Mapping[int, int] | None = None,
        tf_padding: bool = False,
        bn_eps: float = BN_EPS,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        if not isinstance(num_stages, int) or not 1 <= num_stages <= NUM_STAGES:
            raise ValueError(f"num_stages must be an int in 1..{NUM_STAGES}, got {num_stages!r}")
        if not width_mult > 0:
            raise ValueError(f"width_mult must be positive, got {width_mult!r}")
        self.width_mult = float(width_mult)
        self.num_stages = num_stages
        self.tf_padding = bool(tf_padding)
        self.bn_eps = bn_eps
        self.stage_strides = _per_stage(stage_strides, DEFAULT_STAGE_STRIDES, num_stages, "stage_strides")
        self.stage_dilations = _per_stage(stage_dilations, (1,) * NUM_STAGES, num_stages, "stage_dilations")
        self.weights_source: WeightSource | None = None
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}

        in_ch = make_divisible(STEM_CHANNELS * width_mult)
        stages: list[nn.Module] = [
            ConvBNAct(
                3,
                in_ch,
                3,
                stride=self.stage_strides[0],
                dilation=self.stage_dilations[0],
                tf_padding=tf_padding,
                **bn,
            )
        ]
        channels = [in_ch]
        for k, (t, c, n, _) in enumerate(STAGE_SETTINGS[: num_stages - 1], start=2):
            out_ch = make_divisible(c * width_mult)
            blocks = []
            for i in range(n):
                blocks.append(
                    InvertedResidual(
                        in_ch,
                        out_ch,
                        stride=self.stage_strides[k - 1] if i == 0 else 1,
                        expand_ratio=t,
                        dilation=self.stage_dilations[k - 1],
                        tf_padding=tf_padding,
                        **bn,
                    )
                )
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
            channels.append(out_ch)
        self.stages = nn.ModuleList(stages)
        self.stage_channels: list[int] = channels
        self.out_channels: int = channels[-1]
        self.stage_output_strides: list[int] = [
            int(np.prod(self.stage_strides[: k + 1])) for k in range(num_stages)
        ]
        _init_weights(self)

    def stage(self, k: int) -> nn.Module:
        """Stage ``k`` (1-based, as in the paper)."""
        if not 1 <= k <= self.num_stages:
            raise IndexError(f"stage {k} is not one of the built stages 1..{self.num_stages}")
        return self.stages[k - 1]

    def forward_stages(self, x: Tensor, upto: int | None = None) -> list[Tensor]:
        """Outputs of stages 1..upto (default: all built stages); element ``k - 1`` is stage ``k``'s."""
        upto = self.num_stages if upto is None else upto
        if not 1 <= upto <= self.num_stages:
            raise ValueError(f"upto must be in 1..{self.num_stages}, got {upto}")
        outs = []
        for stage in self.stages[:upto]:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        """Output of the last built stage."""
        for stage in self.stages:
            x = stage(x)
        return x


class MobileNetV2Classifier(nn.Module):
    """The ImageNet classifier around a full 8-stage :class:`MobileNetV2`: ``features`` -> ``head``
    (1x1 conv to 1280 ch, BN, ReLU6) -> global average pool -> dropout -> ``fc``. Used to verify
    pretrained weights; the cascade uses the feature extractor alone.

    ``num_classes=1000`` gives torchvision's class order (index = ImageNet class id). TensorFlow's models
    have 1001 outputs with index 0 = "background"; loading them into a 1000-class model drops that row,
    so indices are ImageNet ids for either source. Use ``num_classes=1001`` to keep TensorFlow's order.
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.2,
        tf_padding: bool = False,
        bn_eps: float = BN_EPS,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        self.features = MobileNetV2(
            width_mult, NUM_STAGES, tf_padding=tf_padding, bn_eps=bn_eps, bn_momentum=bn_momentum
        )
        self.width_mult = self.features.width_mult
        self.bn_eps = bn_eps
        self.num_classes = num_classes
        last = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        self.head = ConvBNAct(self.features.out_channels, last, 1, bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(last, num_classes)
        self.weights_source: WeightSource | None = None
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.features(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(x))


def _init_weights(module: nn.Module) -> None:
    """torchvision's initialisation: Kaiming-normal (fan_out) convs, unit/zero BN, N(0, 0.01) linear."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


