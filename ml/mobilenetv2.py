"""MobileNetV2 (Sandler et al., CVPR 2018) as the staged encoder of the NailSet cascade.

Plain PyTorch; this module never imports Django. It follows torchvision's model files in spirit: one
architecture per file, builder functions (:func:`mobilenet_v2`, :func:`mobilenet_v2_classifier`) and
pretrained weights as named sources (:data:`WEIGHT_SOURCES`).

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
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dataset.checksums import file_sha256

__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "NUM_STAGES",
    "OS16_STAGE_DILATIONS",
    "OS16_STAGE_STRIDES",
    "STAGE_SETTINGS",
    "WEIGHT_SOURCES",
    "ConvBNAct",
    "InvertedResidual",
    "MobileNetV2",
    "MobileNetV2Classifier",
    "TFSamePad2d",
    "WeightSource",
    "WeightsError",
    "default_weights_dir",
    "load_imagenet_labels",
    "load_pretrained",
    "mobilenet_v2",
    "mobilenet_v2_classifier",
    "normalize_input",
    "recalibrate_batchnorm",
    "resolve_weights_path",
    "tf_same_padding",
    "tflite_state_dict",
    "torchvision_key_map",
    "torchvision_state_dict",
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


class WeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be used (missing file, wrong format, keys, shapes
    or width). Never caught internally: asking for weights never silently yields a random network."""


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
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
        width_mult: channel multiplier; every stage width is ``_make_divisible(c * width_mult, 8)``.
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

        in_ch = _make_divisible(STEM_CHANNELS * width_mult)
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
            out_ch = _make_divisible(c * width_mult)
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
        last = _make_divisible(LAST_CHANNELS * max(1.0, width_mult))
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


# ----------------------------------------------------------------------------------------------------
# Weight sources
# ----------------------------------------------------------------------------------------------------

_TF_MEAN = (0.5, 0.5, 0.5)  # (x / 255 - 0.5) / 0.5 == x / 127.5 - 1
_TF_STD = (0.5, 0.5, 0.5)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightSource:
    """A named offline source of ImageNet-pretrained MobileNetV2 (width 1.0) weights.

    ``filenames`` are looked for, in order, in the weights directory (see :func:`resolve_weights_path`);
    ``mean``/``std`` normalise RGB images scaled to [0, 1] the way the weights were trained;
    ``tf_padding`` is the padding the converted network needs; ``sha256`` optionally pins files by name.
    """

    name: str
    format: str  # "tflite" or "torchvision"
    filenames: tuple[str, ...]
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    tf_padding: bool
    description: str
    sha256: Mapping[str, str] | None = None


WEIGHT_SOURCES: dict[str, WeightSource] = {
    s.name: s
    for s in (
        WeightSource(
            name="imagenet-tflite",
            format="tflite",
            filenames=("mobilenet_v2_1.0_224_quant.tflite",),
            num_classes=1001,
            mean=_TF_MEAN,
            std=_TF_STD,
            tf_padding=True,
            description="TF1 (slim) MobileNetV2 1.0/224, quantization-aware trained, uint8 per-tensor "
            "TensorFlow Lite; the default offline source",
            sha256={
                "mobilenet_v2_1.0_224_quant.tflite": (
                    "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
                )
            },
        ),
        WeightSource(
            name="imagenet-tflite-tf2",
            format="tflite",
            filenames=("tf2_mobilenet_v2_1.0_224_ptq.tflite",),
            num_classes=1001,
            mean=_TF_MEAN,
            std=_TF_STD,
            tf_padding=True,
            description="TF2 MobileNetV2 1.0/224, int8 post-training quantized (per-channel weights) "
            "TensorFlow Lite",
            sha256={
                "tf2_mobilenet_v2_1.0_224_ptq.tflite": (
                    "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"
                )
            },
        ),
        WeightSource(
            name="imagenet-torchvision",
            format="torchvision",
            filenames=("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"),
            num_classes=1000,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            tf_padding=False,
            description="torchvision's ImageNet checkpoint (IMAGENET1K_V1 b0353104 or IMAGENET1K_V2 "
            "7ebf99e0), float32 with batch-norm statistics",
        ),
    )
}

#: Environment variable naming the directory that holds the pretrained weight files.
WEIGHTS_DIR_ENV = "NAILSET_PRETRAINED_DIR"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_weights_dir() -> Path:
    """``$NAILSET_PRETRAINED_DIR`` if set, else ``<project root>/../shared/weights``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return _PROJECT_ROOT.parent / "shared" / "weights"


def _get_source(weights: str | WeightSource) -> WeightSource:
    if isinstance(weights, WeightSource):
        return weights
    try:
        return WEIGHT_SOURCES[weights]
    except (KeyError, TypeError):
        raise WeightsError(
            f"unknown weights {weights!r}; known sources: {', '.join(sorted(WEIGHT_SOURCES))}"
        ) from None


def resolve_weights_path(weights: str | WeightSource, weights_path: str | os.PathLike | None = None) -> Path:
    """The file holding ``weights``: ``weights_path`` itself if it is a file, else the first of the
    source's file names found in ``weights_path`` (a directory) or :func:`default_weights_dir`.
    Raises :class:`WeightsError` naming every path tried when none exists."""
    source = _get_source(weights)
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if p.is_file():
            return p
        if not p.is_dir():
            raise WeightsError(f"weights {source.name!r}: file {p} does not exist")
        directory, how = p, "the given directory"
    else:
        directory = default_weights_dir()
        how = f"${WEIGHTS_DIR_ENV}" if os.environ.get(WEIGHTS_DIR_ENV) else "the default weights directory"
    tried = [directory / name for name in source.filenames]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise WeightsError(
        f"weights {source.name!r}: no weight file in {how} {directory} (tried "
        + ", ".join(str(t) for t in tried)
        + f"); pass weights_path= or set ${WEIGHTS_DIR_ENV}"
    )


def _check_hash(source: WeightSource, path: Path) -> None:
    """Known files must have their published sha256; torchvision's ``name-<hexprefix>.pth`` convention
    (torch.hub's check_hash) is honoured too."""
    expected = (source.sha256 or {}).get(path.name)
    prefix = None
    if source.format == "torchvision":
        m = re.fullmatch(r".*-([0-9a-f]{8,64})\.pth", path.name)
        prefix = m.group(1) if m else None
    if expected is None and prefix is None:
        return
    digest = file_sha256(path)
    if expected is not None and digest != expected:
        raise WeightsError(f"{path}: sha256 {digest} differs from the published {expected}; file corrupt?")
    if prefix is not None and not digest.startswith(prefix):
        raise WeightsError(f"{path}: sha256 {digest} does not start with {prefix} as its name says")


# ----------------------------------------------------------------------------------------------------
# Canonical layer list (names of MobileNetV2Classifier at width 1.0, in execution order)
# ----------------------------------------------------------------------------------------------------


def _canonical_convs() -> list[tuple[str, str, int, bool]]:
    """(our prefix, "conv" | "dw", stride, has_activation) for every conv of the width-1.0 classifier,
    in execution order, ending with the classifier ("fc", as a 1x1 conv in TensorFlow)."""
    layers = [("features.stages.0", "conv", 2, True)]
    for k, (t, _, n, s) in enumerate(STAGE_SETTINGS, start=1):
        for i in range(n):
            p = f"features.stages.{k}.{i}"
            if t != 1:
                layers.append((f"{p}.expand", "conv", 1, True))
            layers.append((f"{p}.dw", "dw", s if i == 0 else 1, True))
            layers.append((f"{p}.project", "conv", 1, False))
    layers.append(("head", "conv", 1, True))
    layers.append(("fc", "conv", 1, False))
    return layers


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


def _read_torchvision(path: Path) -> dict[str, Tensor]:
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


# ----------------------------------------------------------------------------------------------------
# TensorFlow Lite flatbuffers
# ----------------------------------------------------------------------------------------------------


def _import_tflite():
    try:
        import tflite  # the flatbuffer schema package (pure Python), not TensorFlow
    except ImportError as e:
        raise WeightsError(
            "reading .tflite weights needs the 'tflite' and 'flatbuffers' packages "
            "(pip install tflite flatbuffers); TensorFlow itself is not needed"
        ) from e
    return tflite


def _tflite_tensor(tfl, model, graph, index: int, data: bytes, origin: str) -> np.ndarray:
    """A constant tensor of the flatbuffer as float32, dequantized as (q - zero_point) * scale, per
    tensor or per channel along the tensor's quantized dimension."""
    t = graph.Tensors(index)
    name = t.Name().decode(errors="replace")
    dtypes = {
        tfl.TensorType.FLOAT32: np.float32,
        tfl.TensorType.FLOAT16: np.float16,
        tfl.TensorType.INT8: np.int8,
        tfl.TensorType.UINT8: np.uint8,
        tfl.TensorType.INT32: np.int32,
    }
    if t.Type() not in dtypes:
        raise WeightsError(f"{origin}: tensor {name!r} has unsupported type {t.Type()}")
    dtype = np.dtype(dtypes[t.Type()])
    shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    buf = model.Buffers(t.Buffer())
    if buf.DataLength():
        raw = buf.DataAsNumpy().tobytes()
    elif hasattr(buf, "Offset") and buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        raw = data[buf.Offset(): buf.Offset() + buf.Size()]
    else:
        raise WeightsError(f"{origin}: tensor {name!r} has no constant data (computed at run time?)")
    arr = np.frombuffer(raw, dtype=dtype)
    if arr.size != int(np.prod(shape)):
        raise WeightsError(f"{origin}: tensor {name!r} holds {arr.size} values for shape {shape}")
    arr = arr.reshape(shape)
    if dtype.kind == "f":
        return arr.astype(np.float32)
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        raise WeightsError(f"{origin}: integer tensor {name!r} carries no quantization scale")
    scale = q.ScaleAsNumpy().astype(np.float64)
    zero = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else np.zeros(1)
    if scale.size > 1:
        axis = q.QuantizedDimension()
        if scale.size != shape[axis]:
            raise WeightsError(
                f"{origin}: tensor {name!r} has {scale.size} scales for dimension {axis} of {shape}"
            )
        bshape = [1] * len(shape)
        bshape[axis] = scale.size
        scale = scale.reshape(bshape)
        zero = zero.reshape(bshape) if zero.size == scale.size else zero
    return ((arr.astype(np.float64) - zero) * scale).astype(np.float32)


def tflite_state_dict(path: str | os.PathLike, bn_eps: float = BN_EPS) -> dict[str, Tensor]:
    """Convert a TensorFlow Lite ImageNet MobileNetV2 1.0 (float or quantized) into a state dict of our
    :class:`MobileNetV2Classifier` (1001 classes, index 0 = background).

    The convolutions are taken in execution order and checked one by one against the architecture
    (kind, kernel shape, stride, "SAME" padding, ReLU6 or linear activation). Kernels go from TFLite's
    OHWI (depthwise: 1HWC) to PyTorch's OIHW (depthwise: C1HW). Batch norm is folded into the TFLite
    conv weights and biases; each BN layer is set to pass that bias through exactly in eval mode:
    ``weight = 1, bias = b, running_mean = 0, running_var = 1 - bn_eps``.
    """
    path = Path(path)
    tfl = _import_tflite()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"{path}: cannot be read ({e})") from e
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise WeightsError(f"{path}: not a TensorFlow Lite flatbuffer (no TFL3 identifier)")
    try:
        return _convert_tflite(tfl, data, str(path), bn_eps)
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated or malformed flatbuffer fails anywhere
        raise WeightsError(f"{path}: malformed TensorFlow Lite model ({type(e).__name__}: {e})") from e


def _convert_tflite(tfl, data: bytes, origin: str, bn_eps: float) -> dict[str, Tensor]:
    model = tfl.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise WeightsError(f"{origin}: the TensorFlow Lite model has no subgraph")
    graph = model.Subgraphs(0)
    conv_codes = {tfl.BuiltinOperator.CONV_2D: "conv", tfl.BuiltinOperator.DEPTHWISE_CONV_2D: "dw"}
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in conv_codes:
            continue
        kind = conv_codes[builtin]
        table = op.BuiltinOptions()
        opts = tfl.Conv2DOptions() if kind == "conv" else tfl.DepthwiseConv2DOptions()
        opts.Init(table.Bytes, table.Pos)
        ops.append((i, kind, opts, [int(j) for j in op.InputsAsNumpy()]))

    layers = _canonical_convs()
    if len(ops) != len(layers):
        raise WeightsError(
            f"{origin}: {len(ops)} convolutions, but MobileNetV2 1.0 has {len(layers)}; not this model"
        )
    ref = MobileNetV2Classifier(1.0, num_classes=1001).state_dict()
    relu6 = tfl.ActivationFunctionType.RELU6
    none = tfl.ActivationFunctionType.NONE
    out: dict[str, Tensor] = {}
    for (op_index, kind, opts, inputs), (prefix, want_kind, stride, act) in zip(ops, layers):
        where = f"{origin}: operator {op_index} (our {prefix})"
        if kind != want_kind:
            raise WeightsError(f"{where}: is a {kind} convolution, expected {want_kind}")
        if (opts.StrideH(), opts.StrideW()) != (stride, stride):
            raise WeightsError(f"{where}: stride {opts.StrideH()}x{opts.StrideW()}, expected {stride}")
        if opts.Padding() != tfl.Padding.SAME:
            raise WeightsError(f"{where}: padding is not SAME")
        if opts.FusedActivationFunction() != (relu6 if act else none):
            raise WeightsError(f"{where}: fused activation {opts.FusedActivationFunction()} is unexpected")
        if kind == "dw" and opts.DepthMultiplier() not in (0, 1):
            raise WeightsError(f"{where}: depth multiplier {opts.DepthMultiplier()}")
        w = _tflite_tensor(tfl, model, graph, inputs[1], data, origin)
        if kind == "dw":  # 1 x H x W x C -> C x 1 x H x W
            w = w[0].transpose(2, 0, 1)[:, None]
        else:  # O x H x W x I -> O x I x H x W
            w = w.transpose(0, 3, 1, 2)
        if len(inputs) > 2 and inputs[2] >= 0:
            b = _tflite_tensor(tfl, model, graph, inputs[2], data, origin)
        else:
            b = np.zeros(w.shape[0], np.float32)
        if prefix == "fc":
            w = w.reshape(w.shape[0], -1)
            names = {"fc.weight": w, "fc.bias": b}
        else:
            c = w.shape[0]
            names = {
                f"{prefix}.conv.weight": w,
                f"{prefix}.bn.weight": np.ones(c, np.float32),
                f"{prefix}.bn.bias": b,
                f"{prefix}.bn.running_mean": np.zeros(c, np.float32),
                f"{prefix}.bn.running_var": np.full(c, 1.0 - bn_eps, np.float32),
            }
        for key, value in names.items():
            if tuple(value.shape) != tuple(ref[key].shape):
                raise WeightsError(
                    f"{where}: {key} has shape {tuple(value.shape)}, expected {tuple(ref[key].shape)}"
                )
            out[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return out


@functools.lru_cache(maxsize=4)
def _tflite_cached(path: str, mtime_ns: int, size: int, bn_eps: float) -> dict[str, Tensor]:
    return tflite_state_dict(path, bn_eps)


# ----------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------


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
    source = _get_source(weights)
    if model.width_mult != 1.0:
        raise WeightsError(
            f"weights {source.name!r} are for width_mult 1.0; this model has width_mult {model.width_mult}"
        )
    path = resolve_weights_path(source, weights_path)
    _check_hash(source, path)
    if source.format == "tflite":
        stat = path.stat()
        full = _tflite_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, float(model.bn_eps))
    elif source.format == "torchvision":
        full = _read_torchvision(path)
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


def mobilenet_v2(
    width_mult: float = 1.0,
    weights: str | WeightSource | None = None,
    weights_path: str | os.PathLike | None = None,
    num_stages: int = NUM_STAGES,
    stage_strides: Sequence[int] | Mapping[int, int] | None = None,
    stage_dilations: Sequence[int] | Mapping[int, int] | None = None,
    tf_padding: bool | None = None,
    bn_eps: float = BN_EPS,
    bn_momentum: float = BN_MOMENTUM,
) -> MobileNetV2:
    """Build the staged MobileNetV2 feature extractor, optionally with pretrained weights.

    ``weights``: None (random init) or a name from :data:`WEIGHT_SOURCES`
    ("imagenet-tflite", "imagenet-tflite-tf2", "imagenet-torchvision"). ``weights_path``: the weight
    file, or a directory holding it; default :func:`default_weights_dir`. ``tf_padding=None`` picks the
    padding the weights need (TensorFlow "SAME" for TFLite sources, symmetric otherwise).
    Pretrained weights need ``width_mult=1.0``; any problem raises :class:`WeightsError`.

    Example (the cascade's low branch)::

        low = mobilenet_v2(weights="imagenet-tflite",
                           stage_strides=OS16_STAGE_STRIDES, stage_dilations=OS16_STAGE_DILATIONS)
        feats = low.forward_stages(normalize_input(images, low.weights_source))
        low4, low8 = feats[3], feats[7]
    """
    source = _get_source(weights) if weights is not None else None
    if source is not None and width_mult != 1.0:
        raise WeightsError(f"weights {source.name!r} are for width_mult 1.0, not {width_mult}")
    if tf_padding is None:
        tf_padding = source.tf_padding if source is not None else False
    model = MobileNetV2(
        width_mult,
        num_stages,
        stage_strides=stage_strides,
        stage_dilations=stage_dilations,
        tf_padding=tf_padding,
        bn_eps=bn_eps,
        bn_momentum=bn_momentum,
    )
    if source is not None:
        load_pretrained(model, source, weights_path)
    return model


def mobilenet_v2_classifier(
    width_mult: float = 1.0,
    weights: str | WeightSource | None = None,
    weights_path: str | os.PathLike | None = None,
    num_classes: int = 1000,
    dropout: float = 0.2,
    tf_padding: bool | None = None,
    bn_eps: float = BN_EPS,
    bn_momentum: float = BN_MOMENTUM,
) -> MobileNetV2Classifier:
    """Build the ImageNet classifier (for verifying weights). Arguments as :func:`mobilenet_v2`;
    ``num_classes`` 1000 (ImageNet ids, either source) or 1001 (TensorFlow order, TFLite sources only)."""
    source = _get_source(weights) if weights is not None else None
    if source is not None and width_mult != 1.0:
        raise WeightsError(f"weights {source.name!r} are for width_mult 1.0, not {width_mult}")
    if source is not None and num_classes not in (1000, source.num_classes):
        raise WeightsError(
            f"weights {source.name!r} have {source.num_classes} classes; num_classes={num_classes} cannot load"
        )
    if tf_padding is None:
        tf_padding = source.tf_padding if source is not None else False
    model = MobileNetV2Classifier(width_mult, num_classes, dropout, tf_padding, bn_eps, bn_momentum)
    if source is not None:
        load_pretrained(model, source, weights_path)
    return model


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def normalize_input(images: Tensor, weights: str | WeightSource | None) -> Tensor:
    """Normalise RGB images scaled to [0, 1] (N x 3 x H x W) the way ``weights`` were trained:
    ``x * 2 - 1`` (i.e. pixel / 127.5 - 1) for TensorFlow sources, ImageNet mean/std for torchvision.
    ``None`` (random init) uses torchvision's mean/std."""
    source = _get_source(weights) if weights is not None else WEIGHT_SOURCES["imagenet-torchvision"]
    mean = torch.tensor(source.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(source.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def load_imagenet_labels(path: str | os.PathLike | None = None, num_classes: int = 1000) -> list[str]:
    """Class names from ``imagenet_labels.txt`` (1001 lines, TensorFlow order, first = "background");
    ``num_classes=1000`` drops the background so index = ImageNet class id."""
    p = Path(path) if path is not None else default_weights_dir() / "imagenet_labels.txt"
    if not p.is_file():
        raise WeightsError(f"labels file {p} does not exist")
    labels = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(labels) != 1001:
        raise WeightsError(f"{p}: expected 1001 labels, found {len(labels)}")
    return labels[1:] if num_classes == 1000 else labels


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
