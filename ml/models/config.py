"""The model configuration: :class:`ModelConfig` (everything needed to rebuild a model, stored with every
checkpoint), the named presets :data:`MODEL_PRESETS` and :func:`model_config`. Plain Python; never imports
Django nor an architecture (the architectures read their config; :mod:`ml.models.registry` builds one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ml.dataclass_dicts import from_known_keys
from ml.models.mobilenetv2 import BN_EPS, BN_MOMENTUM
from ml.models.outputs import NUM_FINGER_CLASSES
from ml.weights.sources import WEIGHT_SOURCES, WeightsError

__all__ = ["ARCHS", "DEPTHS", "LOW_DOWNSAMPLES", "MODEL_PRESETS", "REFINE_STRIDES", "ModelConfig", "model_config"]

ARCHS = ("cascade", "baseline", "unet")
DEPTHS = (55, 43)
#: Finest stride of the cascade's boundary refinement (0: none, the paper's cascade).
REFINE_STRIDES = (0, 4, 2)
LOW_DOWNSAMPLES = (1, 2)  # the low branch sees the photo downsampled x2 (the paper) or as it is


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; JSON-serialisable (stored with every checkpoint).

    Attributes:
        arch: "cascade" (the paper's model), "baseline" (no cascade: low branch only) or "unet".
        depth: 55 (full low branch) or 43 (without the 160/320-ch groups); cascade and baseline only.
        fusion_width: channels of the fused features (the paper's figure: 320; 256 / 128 are cheaper).
        width_mult: MobileNetV2 width multiplier of both encoders (pretrained weights need 1.0).
        pretrained: weight source for the encoder(s) (a name of ``ml.weights.sources.WEIGHT_SOURCES``, e.g.
            "imagenet-tflite"), or None for random initialisation. Both encoders load the same source
            into separate parameters (two backbones, not shared; one with ``shared_encoder``).
        weights_path: file or directory of the pretrained weights (default: ``default_weights_dir()``);
            not needed to rebuild a trained model from a checkpoint.
        tf_padding: TensorFlow "SAME" padding in stride-2 convs; None = what the source needs.
        heads_before_upsample: run the 1x1 heads before bilinear upsampling (exact, cheaper).
        refine_stride: the cascade's boundary refinement (``ml.models.cascade.BoundaryRefinement``): 0 = none
            (the paper's cascade, heads at H/8); 4 = the fused H/8 map refined with the high branch's stride-4
            features, heads at H/4; 2 = then once more with its stride-2 features, heads at H/2.
        refine_width: channels of the refinement (when ``refine_stride`` is not 0).
        low_downsample: the low branch's input: the photo downsampled x2 (2, the paper's) or the photo itself
            (1: its deep features see small nails at twice the pixels, stage_low4 and Fusion0 at H/8;
            cascade and baseline only; issue #17).
        shared_encoder: the cascade without a second encoder (issue #17; needs ``low_downsample=1`` and depth
            55): the low branch reads the photo itself, so its own stages 1-4 are what the high branch would
            compute again; Fusion1 (and the refinement) take them, and Fusion0 fuses the low branch's last map
            with its stride-16 stage 6 (96 ch) at H/16. One full-resolution pass instead of two.
        unet_decoder_channels: decoder widths of the U-Net (smp's defaults).
        bn_eps, bn_momentum: batch-norm settings of the encoders and the decoder.
    """

    arch: str = "cascade"
    depth: int = 55
    fusion_width: int = 320
    width_mult: float = 1.0
    pretrained: str | None = "imagenet-tflite"
    weights_path: str | None = None
    tf_padding: bool | None = None
    heads_before_upsample: bool = True
    refine_stride: int = 0
    refine_width: int = 32
    low_downsample: int = 2
    shared_encoder: bool = False
    num_classes: int = NUM_FINGER_CLASSES
    unet_decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    bn_eps: float = BN_EPS
    bn_momentum: float = BN_MOMENTUM

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.depth not in DEPTHS:
            raise ValueError(f"depth must be 55 or 43, got {self.depth!r}")
        if not isinstance(self.fusion_width, int) or self.fusion_width < 1:
            raise ValueError(f"fusion_width must be a positive int, got {self.fusion_width!r}")
        if self.refine_stride not in REFINE_STRIDES:
            raise ValueError(f"refine_stride must be one of {REFINE_STRIDES}, got {self.refine_stride!r}")
        if self.refine_stride and self.arch != "cascade":
            raise ValueError(f"the boundary refinement needs the cascade's high branch, not arch {self.arch!r}")
        if self.low_downsample not in LOW_DOWNSAMPLES:
            raise ValueError(f"low_downsample must be one of {LOW_DOWNSAMPLES}, got {self.low_downsample!r}")
        if self.low_downsample != 2 and self.arch == "unet":
            raise ValueError("low_downsample is the cascade's (and the baseline's) low branch; the U-Net has none")
        if self.shared_encoder and (self.arch != "cascade" or self.low_downsample != 1 or self.depth != 55):
            raise ValueError("shared_encoder is the cascade whose low branch reads the photo itself: it needs "
                             f"arch 'cascade', low_downsample 1 and depth 55, not arch {self.arch!r}, "
                             f"low_downsample {self.low_downsample!r}, depth {self.depth!r}")
        if not isinstance(self.refine_width, int) or self.refine_width < 2:
            raise ValueError(f"refine_width must be an int >= 2, got {self.refine_width!r}")
        if not self.width_mult > 0:
            raise ValueError(f"width_mult must be positive, got {self.width_mult!r}")
        if self.pretrained is not None:
            if self.pretrained not in WEIGHT_SOURCES:
                raise WeightsError(
                    f"unknown weights {self.pretrained!r}; known sources: {', '.join(sorted(WEIGHT_SOURCES))}"
                )
            if self.width_mult != 1.0:
                raise WeightsError(
                    f"weights {self.pretrained!r} are for width_mult 1.0, not {self.width_mult}"
                )
        object.__setattr__(self, "unet_decoder_channels", tuple(int(c) for c in self.unet_decoder_channels))
        object.__setattr__(self, "width_mult", float(self.width_mult))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unet_decoder_channels"] = list(self.unet_decoder_channels)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        return from_known_keys(cls, data, "model")

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)

    @property
    def resolved_tf_padding(self) -> bool:
        if self.tf_padding is not None:
            return bool(self.tf_padding)
        return WEIGHT_SOURCES[self.pretrained].tf_padding if self.pretrained else False

    @property
    def input_mean(self) -> tuple[float, float, float]:
        """Normalisation of the pretrained source (torchvision's ImageNet mean/std without weights, as
        ``ml.weights.sources.normalize_input``)."""
        return WEIGHT_SOURCES[self.pretrained or "imagenet-torchvision"].mean

    @property
    def input_std(self) -> tuple[float, float, float]:
        return WEIGHT_SOURCES[self.pretrained or "imagenet-torchvision"].std


#: Named model configurations (``cascade_net(preset)``); tiny ones are for tests.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "cascade-55": ModelConfig(),
    "cascade-43": ModelConfig(depth=43),
    "cascade-55-f256": ModelConfig(fusion_width=256),
    "cascade-55-f128": ModelConfig(fusion_width=128),
    "cascade-55-low1-f128": ModelConfig(fusion_width=128, low_downsample=1),
    "cascade-55-shared-f128": ModelConfig(fusion_width=128, low_downsample=1, shared_encoder=True),
    "cascade-55-shared-f128-refined": ModelConfig(fusion_width=128, low_downsample=1, shared_encoder=True,
                                                  refine_stride=4),
    "cascade-55-refined": ModelConfig(refine_stride=4),
    "cascade-55-refined-s2": ModelConfig(refine_stride=2),
    "baseline-55": ModelConfig(arch="baseline"),
    "unet": ModelConfig(arch="unet"),
    "tiny": ModelConfig(width_mult=0.25, fusion_width=32, pretrained=None),
    "tiny-refined": ModelConfig(width_mult=0.25, fusion_width=32, pretrained=None, refine_stride=4, refine_width=8),
    "tiny-low1": ModelConfig(width_mult=0.25, fusion_width=32, pretrained=None, low_downsample=1),
    "tiny-shared": ModelConfig(width_mult=0.25, fusion_width=32, pretrained=None, low_downsample=1,
                               shared_encoder=True),
    "tiny-shared-refined": ModelConfig(width_mult=0.25, fusion_width=32, pretrained=None, low_downsample=1,
                                       shared_encoder=True, refine_stride=4, refine_width=8),
    "tiny-baseline": ModelConfig(arch="baseline", width_mult=0.25, fusion_width=32, pretrained=None),
    "tiny-unet": ModelConfig(
        arch="unet", width_mult=0.25, pretrained=None, unet_decoder_channels=(32, 16, 16, 8, 8)
    ),
}


def model_config(config: ModelConfig | Mapping[str, Any] | str | None = None, **overrides: Any) -> ModelConfig:
    """A :class:`ModelConfig` from a preset name, a config, a dict (e.g. from JSON) or None (the
    paper's cascade-55), with keyword overrides."""
    if config is None:
        base = ModelConfig()
    elif isinstance(config, ModelConfig):
        base = config
    elif isinstance(config, str):
        try:
            base = MODEL_PRESETS[config]
        except KeyError:
            raise ValueError(
                f"unknown model preset {config!r}; known: {', '.join(sorted(MODEL_PRESETS))}"
            ) from None
    elif isinstance(config, Mapping):
        base = ModelConfig.from_dict(config)
    else:
        raise TypeError(f"expected a ModelConfig, dict, preset name or None, got {type(config).__name__}")
    return base.replace(**overrides) if overrides else base

