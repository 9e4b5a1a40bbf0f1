"""MobileNetV2 builders, torchvision style: the architecture of :mod:`ml.models.mobilenetv2` with named
pretrained weights (:mod:`ml.weights`) loaded, what the cascade and the U-Net build their encoders with.
Plain PyTorch; never imports Django."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ml.models.mobilenetv2 import BN_EPS, BN_MOMENTUM, NUM_STAGES, MobileNetV2, MobileNetV2Classifier
from ml.weights.loading import load_pretrained
from ml.weights.sources import WeightSource, WeightsError, get_source

__all__ = ["mobilenet_v2", "mobilenet_v2_classifier"]


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
    source = get_source(weights) if weights is not None else None
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
    source = get_source(weights) if weights is not None else None
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

